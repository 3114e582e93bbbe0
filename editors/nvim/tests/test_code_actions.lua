-- Code actions through Neovim's own LSP client against the real `tandem` binary, with a fake
-- chat model on 127.0.0.1 (fake_chat.lua) as `actions.backend`: vim.lsp.buf.code_action()
-- applies "Document" (resolved through codeAction/resolve), and Refine's instruction comes from
-- vim.ui.input through the plugin's `tandem.refine` command handler.
local H = require("helpers")
local F = require("fake_chat")

local T = {}
local child, model

local CALC = { "pub fn add(a: i32, b: i32) -> i32 {", "    a + b", "}" }
local DOC = "/// Adds `a` and `b`."
local INSTRUCTION = "mention overflow"
local REFINED = "/// Adds `a` and `b`; overflows like `+`."
local SHORTER = "/// Adds."

local function with_doc(doc)
  return { doc, CALC[1], CALC[2], CALC[3] }
end

local function describe_model()
  local lines = {}
  for i, r in ipairs(model.requests) do
    table.insert(lines, ("  %d. %s %s: %s"):format(i, r.method, r.path, F.last_user(r.body):sub(-160):gsub("\n", "\\n")))
  end
  return "model requests:\n" .. table.concat(lines, "\n")
end

local function wait_buffer(want, what)
  if not H.poll(20000, function()
    return vim.deep_equal(want, child:lines())
  end) then
    child:fail(("%s: expected the buffer %s\n%s\nmessages: %s"):format(
      what, vim.inspect(want), describe_model(), vim.inspect(child:lua("return _G.tandem_test_messages"))))
  end
end

--- Runs vim.lsp.buf.code_action() with `apply = true` and a filter on the title's start.
local function apply_action(title_start)
  child:lua([[
    local start = ...
    vim.lsp.buf.code_action({
      apply = true,
      filter = function(a) return vim.startswith(a.title, start) end,
    })
  ]], title_start)
end

table.insert(T, { "setup: the server attaches to a Rust file with a chat model for actions", function()
  model = F.start(function(body)
    local user = F.last_user(body)
    local doc = DOC
    if user:find("Revise it: " .. INSTRUCTION .. ".", 1, true) then
      doc = REFINED
    elseif user:find("Revise it: shorter.", 1, true) then
      doc = SHORTER
    end
    return "Here it is:\n```rust\n" .. doc .. "\n```\n"
  end)
  child = H.start({ setup = { settings = { actions = { backend = {
    kind = "openai-chat", url = model.url, model = "chat-test", timeoutMs = 20000,
  } } } } })
  vim.fn.writefile(CALC, child.ws .. "/src/calc.rs")
  child:lua("vim.cmd.edit(vim.fn.fnameescape(...))", child.ws .. "/src/calc.rs")
  if not H.poll(10000, function()
    return child:lua("return #vim.lsp.get_clients({ bufnr = 0, name = 'tandem' }) == 1")
  end) then
    child:fail("the tandem client did not attach to src/calc.rs")
  end
  child:assert_eq(CALC, child:lines(), "src/calc.rs")
end })

table.insert(T, { "textDocument/codeAction lists Tandem's actions without asking the model", function()
  child:lua("vim.api.nvim_win_set_cursor(0, { 1, 8 })")
  local titles = child:lua([[
    local params = vim.lsp.util.make_range_params(0, "utf-16")
    params.context = { diagnostics = {} }
    local res = vim.lsp.buf_request_sync(0, "textDocument/codeAction", params, 5000) or {}
    local titles = {}
    for _, r in pairs(res) do
      for _, a in ipairs(r.result or {}) do table.insert(titles, a.title) end
    end
    return titles
  ]])
  if not vim.tbl_contains(titles, "Tandem: Document `add`") then
    child:fail("expected \"Tandem: Document `add`\" among the actions, got " .. vim.inspect(titles))
  end
  child:assert_eq(0, #model.requests, "model requests after listing")
end })

table.insert(T, { "vim.lsp.buf.code_action({ apply = true }) applies Document", function()
  child:lua("vim.api.nvim_win_set_cursor(0, { 1, 8 })")
  apply_action("Tandem: Document `add`")
  wait_buffer(with_doc(DOC), "after Document")
  child:assert_eq(1, #model.chats(), "chat requests")
  local user = F.last_user(model.chats()[1].body)
  if not user:find("pub fn add(a: i32, b: i32) -> i32 {", 1, true) then
    child:fail("the model was not shown the function:\n" .. user)
  end
end })

table.insert(T, { "Refine asks with vim.ui.input and sends the instruction", function()
  child:lua([[
    local instruction = ...
    _G.tandem_test_asked = {}
    vim.ui.input = function(opts, on_confirm)
      table.insert(_G.tandem_test_asked, opts.prompt)
      on_confirm(instruction)
    end
  ]], INSTRUCTION)
  child:lua("vim.api.nvim_win_set_cursor(0, { 2, 0 })")
  apply_action('Tandem: Refine "Document `add`"')
  wait_buffer(with_doc(REFINED), "after Refine")
  child:assert_eq({ "Refine Tandem's edit how? " }, child:lua("return _G.tandem_test_asked"), "vim.ui.input prompts")
  child:assert_eq(2, #model.chats(), "chat requests")
  local user = F.last_user(model.chats()[2].body)
  if not user:find("```rust\n" .. DOC .. "\n```", 1, true)
    or not user:find("Your previous answer is in the document now, as shown above.", 1, true)
    or not user:find("Revise it: " .. INSTRUCTION .. ".", 1, true) then
    child:fail("expected the previous answer and \"Revise it: " .. INSTRUCTION .. ".\" in the Refine request:\n" .. user)
  end
end })

table.insert(T, { "Refine cancelled in vim.ui.input sends nothing", function()
  child:lua([[
    _G.tandem_test_asked = {}
    vim.ui.input = function(opts, on_confirm)
      table.insert(_G.tandem_test_asked, opts.prompt)
      on_confirm(nil)
    end
  ]])
  apply_action('Tandem: Refine "Document `add`"')
  if not H.poll(5000, function() return #child:lua("return _G.tandem_test_asked") == 1 end) then
    child:fail("vim.ui.input was not called for Refine")
  end
  -- Then one that is answered: exactly one more chat request (the cancelled one sent none, and
  -- it would have reached the server first).
  child:lua([[
    vim.ui.input = function(_, on_confirm) on_confirm("  shorter ") end
  ]])
  apply_action('Tandem: Refine "Document `add`"')
  wait_buffer(with_doc(SHORTER), "after Refine with \"shorter\"")
  child:assert_eq(3, #model.chats(), "chat requests (2 before, none for the cancelled Refine, 1 for \"shorter\")")
  child:assert_eq({}, vim.tbl_filter(function(m) return m:find("refine") end, child:lua("return _G.tandem_test_messages")), "error messages")
end })

table.insert(T, { "refine_arguments adds the trimmed instruction to the first argument", function()
  child:assert_eq({ { id = 4, instruction = "use iterators" }, "x" },
    child:lua("return require('tandem.actions').refine_arguments({ { id = 4 }, 'x' }, ' use iterators ')"), "arguments")
  child:assert_eq(true, child:lua("return require('tandem.actions').refine_arguments({ { id = 4 } }, '  ') == nil"), "blank instruction")
end })

function T.teardown()
  if child then
    child:close()
  end
  if model then
    model.close()
  end
end

return T
