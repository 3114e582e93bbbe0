-- Code actions: `vim.lsp.buf.code_action()` lists and applies the server's actions (resolved
-- through codeAction/resolve) with no help from the plugin. Only Refine needs words from the
-- user: its follow-up action carries the command `tandem.refine` with `{ id = N }`, which Neovim
-- runs through the client's `commands`; this handler asks the instruction with `vim.ui.input`
-- and sends `workspace/executeCommand` with `{ id = N, instruction = "..." }`. The server then
-- applies the new edit through `workspace/applyEdit` (docs/code-actions.md).
local compat = require("tandem.compat")

local M = {}

M.REFINE = "tandem.refine"
M.PROMPT = "Refine Tandem's edit how? "

--- The command's arguments with `instruction` added to the first one (the server reads only
--- that one); nil when the instruction is missing or blank.
function M.refine_arguments(arguments, instruction)
  if type(instruction) ~= "string" or vim.trim(instruction) == "" then
    return nil
  end
  local args = vim.deepcopy(arguments or {})
  local first = type(args[1]) == "table" and args[1] or {}
  first.instruction = vim.trim(instruction)
  args[1] = first
  return args
end

--- The `tandem.refine` command handler: `fn(command, ctx)` as Neovim calls client commands.
function M.refine(command, ctx)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if not client then
    return
  end
  vim.ui.input({ prompt = M.PROMPT }, function(instruction)
    local arguments = M.refine_arguments(command.arguments, instruction)
    if not arguments then
      return -- cancelled
    end
    compat.request(client, "workspace/executeCommand", {
      command = command.command,
      arguments = arguments,
    }, function(err)
      if err then
        vim.notify("tandem: refine: " .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
      end
    end, ctx.bufnr)
  end)
end

--- Client-side commands, passed to vim.lsp.start as `commands`.
M.commands = {
  [M.REFINE] = M.refine,
}

return M
