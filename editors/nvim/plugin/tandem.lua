-- Defines :Tandem before setup() runs, so `:Tandem log` and `:Tandem status` work anyway.
-- Nothing starts until require("tandem").setup() is called.
if vim.g.loaded_tandem then
  return
end
vim.g.loaded_tandem = true
if vim.fn.has("nvim-0.10") == 0 then
  return
end
require("tandem").create_command()
