-- Drives neovim's own LSP client (vim.lsp, neovim 0.7+) against `pipe lsp`, as a user would:
-- open a pipeline with a mistyped job name, see the diagnostic, apply the quick fix, jump to the
-- definition, list references, complete, hover, and rename a job. Every result is written as
-- one JSON object per line to $PIPE_NVIM_OUT; any Lua error is written there too.
local out = assert(io.open(os.getenv("PIPE_NVIM_OUT"), "w"))
local function record(step, value)
  out:write(vim.fn.json_encode({ step = step, value = value }) .. "\n")
  out:flush()
end

local function cursor_on(pattern, shift)
  local lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  for number, line in ipairs(lines) do
    local column = line:find(pattern, 1, true)
    if column then
      vim.api.nvim_win_set_cursor(0, { number, column - 1 + (shift or 0) })
      return
    end
  end
  error("not in the buffer: " .. pattern)
end

local function request(method, params)
  local responses = vim.lsp.buf_request_sync(0, method, params, 10000)
  assert(responses, method .. ": no answer")
  for _, response in pairs(responses) do
    assert(not response.err, method .. ": " .. vim.inspect(response.err))
    return response.result
  end
end

local function wait_for_diagnostics(wanted)
  local ok = vim.wait(15000, function()
    return wanted(vim.diagnostic.get(0))
  end, 50)
  assert(ok, "diagnostics never became what was wanted: " .. vim.inspect(vim.diagnostic.get(0)))
end

local function run()
  vim.cmd("edit " .. vim.fn.fnameescape(os.getenv("PIPE_NVIM_FILE")))
  local client = vim.lsp.start_client({
    name = "pipe",
    cmd = { os.getenv("PIPE_BIN"), "lsp" },
    root_dir = vim.fn.fnamemodify(os.getenv("PIPE_NVIM_FILE"), ":h"),
  })
  assert(client, "the client started")
  vim.lsp.buf_attach_client(0, client)

  wait_for_diagnostics(function(found) return #found > 0 end)
  local diagnostics = {}
  for _, d in ipairs(vim.diagnostic.get(0)) do
    table.insert(diagnostics, { code = d.code, line = d.lnum, message = d.message })
  end
  record("diagnostics", diagnostics)

  -- The quick fix for the mistyped name, applied by neovim itself.
  cursor_on("[biuld]", 1)
  local params = vim.lsp.util.make_range_params()
  params.context = { diagnostics = vim.lsp.diagnostic.get_line_diagnostics(0) }
  local actions = request("textDocument/codeAction", params)
  record("code_action", actions[1].title)
  vim.lsp.util.apply_workspace_edit(actions[1].edit, "utf-16")
  record("fixed_line", vim.api.nvim_get_current_line())
  wait_for_diagnostics(function(found) return #found == 0 end)
  record("diagnostics_after_fix", #vim.diagnostic.get(0))

  cursor_on("after = [build]", 9)
  local definition = request("textDocument/definition", vim.lsp.util.make_position_params())
  record("definition", { line = definition[1].range.start.line, character = definition[1].range.start.character })

  local reference_params = vim.lsp.util.make_position_params()
  reference_params.context = { includeDeclaration = true }
  local references = request("textDocument/references", reference_params)
  local lines = {}
  for _, location in ipairs(references) do
    table.insert(lines, location.range.start.line)
  end
  record("references", lines)

  cursor_on("require jobs.", 13)
  local completion = request("textDocument/completion", vim.lsp.util.make_position_params())
  local labels = {}
  for _, item in ipairs(completion.items or completion) do
    table.insert(labels, item.label)
  end
  record("completion", labels)

  cursor_on("sqlite_backup(", 2)
  local hover = request("textDocument/hover", vim.lsp.util.make_position_params())
  record("hover", hover.contents.value)

  cursor_on("job build", 5)
  local rename_params = vim.lsp.util.make_position_params()
  rename_params.newName = "compile"
  local edit = request("textDocument/rename", rename_params)
  vim.lsp.util.apply_workspace_edit(edit, "utf-16")
  local renamed = {}
  for _, line in ipairs(vim.api.nvim_buf_get_lines(0, 0, -1, false)) do
    if line:find("compile", 1, true) then
      table.insert(renamed, vim.trim(line))
    end
  end
  record("renamed", renamed)
  vim.wait(500)
  record("diagnostics_after_rename", #vim.diagnostic.get(0))
end

local ok, problem = pcall(run)
if not ok then
  record("error", tostring(problem))
end
out:close()
vim.cmd("qa!")
