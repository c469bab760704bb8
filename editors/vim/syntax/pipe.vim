" Vim syntax file
" Language:    pipe (.pipe pipeline files)
" Maintainer:  the pipe project
" The keyword rules between the GENERATED markers come from editors/keywords.txt:
" regenerate them with `PIPE_REGENERATE=1 cargo test --test error_index`.

if exists("b:current_syntax")
  finish
endif

" Identifiers may contain `-` (job build-docs).
syntax iskeyword @,48-57,_,192-255,-

" BEGIN GENERATED KEYWORDS
syntax match pipeName contained /[A-Za-z0-9_.-]\@1<!\%(git\|date\|jobs\|matrix\|previous\|rollout\|artifact\|env\|pipeline\|run\|secrets\|command\|file\)[A-Za-z0-9_-]\@!/
syntax match pipeItem /[A-Za-z0-9_.-]\@1<!\%(pipeline\|template\|import\|job\|stage\|gate\|promote\|drill\|secret\|artifact\|environment\)[A-Za-z0-9_.-]\@!/
syntax match pipeBlock /[A-Za-z0-9_.-]\@1<!\%(env\|outputs\|matrix\|approval\|migrate\|rollout\|deploy\|smoke\|watch\|rollback\|backup\|restore\|verify\)[A-Za-z0-9_.-]\@!/
syntax match pipeStatement /[A-Za-z0-9_.-]\@1<!\%(run\|require\|warn\|when\|probe\|every\|for\|as\)[A-Za-z0-9_.-]\@!/
syntax match pipeAttribute /[A-Za-z0-9_.-]\@1<!\%(version\|needs\|after\|timeout\|retries\|backoff\|secrets\|produces\|shell\|workdir\|outside_workspace\|inherit_env\|scope\|from\|path\|protected\|extends\|approvers\|quorum\|allow_self\|kind\|steps\|pause\|rto\|rpo\)\ze\s*=\%(=\)\@!/
syntax match pipeOperator /[A-Za-z0-9_.-]\@1<!\%(and\|or\|not\)[A-Za-z0-9_.-]\@!/
syntax match pipeConstant /[A-Za-z0-9_.-]\@1<!\%(true\|false\|expand\|contract\|canary\)[A-Za-z0-9_.-]\@!/
syntax match pipeType /[A-Za-z0-9_.-]\@1<!\%(string\|number\|bool\|duration\|percent\|list\)[A-Za-z0-9_.-]\@!/
" END GENERATED KEYWORDS

" Template and function calls: `cargo(`, `rust.cargo(`, `env(`.
syntax match pipeCall /\<[A-Za-z_][A-Za-z0-9_-]*\%(\.[A-Za-z_][A-Za-z0-9_-]*\)\?\ze(/
" The name after a declaration keyword: `job test`, `promote staging`, `template cargo`.
syntax match pipeItemName /\%(\<\%(pipeline\|template\|job\|stage\|gate\|promote\|drill\|secret\|artifact\|environment\)\s\+\)\@<=[A-Za-z_][A-Za-z0-9_-]*/

" Literals: numbers, percentages (99.9%), durations (250ms, 1h30m).
" (Defined in this order because, at one position, the match defined last wins.)
syntax match pipeNumber   /\<\d\+\%(\.\d\+\)\?\>/
syntax match pipePercent  /\<\d\+\%(\.\d\+\)\?%/
syntax match pipeDuration /\<\d\+\%(\.\d\+\)\?\%(ms\|s\|m\|h\|d\)\%(\d\+\%(\.\d\+\)\?\%(ms\|s\|m\|h\|d\)\)*\>/
syntax match pipeComparison /==\|!=\|<=\|>=\|<\|>/

" Strings, with `${{ expr }}` interpolation highlighted as an embedded expression.
syntax match  pipeEscape        /\\\%(["\\nt]\|u{\x\{1,6}}\)/ contained
syntax region pipeInterpolation matchgroup=pipeInterpolationDelimiter start=/\${{/ end=/}}/ contained contains=pipeName,pipeOperator,pipeConstant,pipeDuration,pipePercent,pipeNumber,pipeComparison,pipeInnerString
syntax region pipeInnerString   start=/"/ skip=/\\"/ end=/"/ contained contains=pipeEscape
syntax region pipeString        start=/"""/ end=/"""/ contains=pipeInterpolation,@Spell
syntax region pipeString        start=/"\%("""\)\@!/ skip=/\\\\\|\\"/ end=/"/ contains=pipeEscape,pipeInterpolation,@Spell

" Comments: `// line` and `/* block */` (block comments do not nest).
syntax keyword pipeTodo        TODO FIXME XXX NOTE contained
syntax match   pipeLineComment /\/\/.*$/ contains=pipeTodo,@Spell
syntax region  pipeBlockComment start=/\/\*/ end=/\*\// contains=pipeTodo,@Spell

highlight default link pipeItem                   Structure
highlight default link pipeItemName               Function
highlight default link pipeCall                   Function
highlight default link pipeBlock                  Keyword
highlight default link pipeStatement              Statement
highlight default link pipeAttribute              Identifier
highlight default link pipeOperator               Operator
highlight default link pipeComparison             Operator
highlight default link pipeConstant               Constant
highlight default link pipeType                   Type
highlight default link pipeName                   Special
highlight default link pipeDuration               Number
highlight default link pipePercent                Number
highlight default link pipeNumber                 Number
highlight default link pipeString                 String
highlight default link pipeInnerString            String
highlight default link pipeEscape                 SpecialChar
highlight default link pipeInterpolationDelimiter Delimiter
highlight default link pipeLineComment            Comment
highlight default link pipeBlockComment           Comment
highlight default link pipeTodo                   Todo

let b:current_syntax = "pipe"
