" Pipeline files of the `pipe` tool: *.pipe
autocmd BufNewFile,BufRead *.pipe setfiletype pipe
