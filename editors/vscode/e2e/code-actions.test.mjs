// End-to-end: Tandem's code actions in a real VS Code (code-server on 127.0.0.1, headless
// Chromium; e2e/harness.mjs) with the real `tandem` binary and a fake OpenAI-compatible chat
// model on 127.0.0.1 as `actions.backend`. "Source Action..." lists "Tandem: Document
// `circle_area`" (a `source` action: VS Code shows those there, not in the light bulb), picking
// it resolves the edit through codeAction/resolve and the docstring lands in the file. Then
// Ctrl+. offers "Tandem: Refine …", whose instruction the extension asks with an input box and
// passes to the server's workspace/executeCommand; the model gets it and the docstring changes.
// Run through `e2e/run.sh`.

import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { startFakeModel } from "./fake-model.mjs";
import { launch, openFile, publishScreenshot, visibleLines, waitReady, waitUntil } from "./harness.mjs";

const FILE_NAME = "area.py";
const BEFORE = "import math\n\n\ndef circle_area(radius):\n    return math.pi * radius ** 2\n";
const DOC = '"""Return the area of a circle of the given radius."""';
const INSTRUCTION = "mention the units";
const REFINED = '"""Return the area of a circle of the given radius, in square units of the radius."""';
const DOCUMENTED = BEFORE.replace("    return", `    ${DOC}\n    return`);
const REFINED_TEXT = BEFORE.replace("    return", `    ${REFINED}\n    return`);
const DOCUMENT_TITLE = "Tandem: Document `circle_area`";
const REFINE_TITLE = 'Tandem: Refine "Document `circle_area`"…';

/** The last user message of a chat request. */
function lastUser(messages) {
  return [...(messages ?? [])].reverse().find((m) => m?.role === "user")?.content ?? "";
}

/** The rows of the open action menu (light bulb, Quick Fix, Source Action), as shown. */
async function actionMenu(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll(".action-widget .monaco-list-row")].map((row) => row.textContent.replace(/\u00a0/g, " ").trim()),
  );
}

test("VS Code lists Tandem's code actions, applies Document, and Refine asks for an instruction with an input box", { timeout: 240_000 }, async (t) => {
  // A chat model that writes a docstring, or revises it when asked to; completions are empty.
  const model = await startFakeModel({
    answer: () => [],
    chat: (messages) => {
      const user = lastUser(messages);
      const doc = user.includes(`Revise it: ${INSTRUCTION}.`) ? REFINED : DOC;
      return ["Here is the docstring:\n```python\n", doc.slice(0, 20), `${doc.slice(20)}\n`, "```\n"];
    },
  });
  t.after(() => model.close());
  const chats = () => model.requests.filter((r) => r.method === "POST" && r.path === "/v1/chat/completions");

  const { page, dirs, artifact, state: describe } = await launch(t, {
    prefix: "vscode-actions",
    files: { [FILE_NAME]: BEFORE },
    settings: {
      "tandem.backend.kind": "openai",
      "tandem.backend.url": model.url,
      "tandem.backend.model": "fake-coder",
      "tandem.actions.backend": { kind: "openai-chat", url: model.url, model: "fake-chat", timeoutMs: 20000 },
    },
  });
  const file = path.join(dirs.workspace, FILE_NAME);
  const state = async () =>
    describe([
      `action menu: ${JSON.stringify(await actionMenu(page).catch(() => []))}`,
      `file on disk: ${JSON.stringify(fs.readFileSync(file, "utf8"))}`,
      `model requests: ${JSON.stringify(model.requests.map((r) => `${r.method} ${r.path}`))}`,
      `last chat: ${JSON.stringify(lastUser(chats().at(-1)?.body?.messages).slice(-300))}`,
    ]);
  const expectLines = async (want, what) => {
    const lines = want.split("\n").slice(0, -1);
    await waitUntil(
      30_000,
      async () => {
        const shown = await visibleLines(page);
        return lines.every((l, i) => shown[i] === l);
      },
      async () => `expected the editor to show ${what}: ${JSON.stringify(lines)}\n  ${await state()}`,
    );
  };
  const pick = async (title) => {
    const row = page.locator(".action-widget .monaco-list-row", { hasText: title });
    await waitUntil(
      30_000,
      async () => (await row.count()) === 1 && (await row.isVisible()),
      async () => `expected the action menu to offer ${JSON.stringify(title)}\n  ${await state()}`,
    );
    return row;
  };

  await waitReady(page, state);
  await openFile(page, state, FILE_NAME, "def circle_area(radius):");
  // The cursor in the function's name.
  await page.locator(".editor-instance .view-line", { hasText: "def circle_area(radius):" }).click();

  // Document: a `source` action, under "Source Action..." (command palette).
  await page.keyboard.press("F1");
  await page.locator(".quick-input-widget input").waitFor({ state: "visible", timeout: 15_000 });
  await page.keyboard.type("Source Action", { delay: 10 });
  const paletteEntry = page.locator(".quick-input-widget .monaco-list-row", { hasText: "Source Action..." }).first();
  await waitUntil(
    15_000,
    () => paletteEntry.isVisible(),
    async () => `expected the command palette to offer "Source Action..."\n  ${await state()}`,
  );
  await paletteEntry.click();
  const documentRow = await pick(DOCUMENT_TITLE);
  if (chats().length !== 0) throw new Error(`listing the actions must not call the model; it got ${chats().length} chat requests`);
  await documentRow.hover();
  const menuShot = artifact("menu.png");
  await page.screenshot({ path: menuShot });
  publishScreenshot(menuShot, "vscode-code-action.png");
  await documentRow.click();

  // codeAction/resolve asks the model; the docstring goes into the body, nothing else changes.
  await expectLines(DOCUMENTED, "the docstring inserted by Document");
  const first = lastUser(chats()[0]?.body?.messages);
  if (!first.includes("def circle_area(radius):") || !/docstring/i.test(first)) {
    throw new Error(`expected the Document request to show the model the function and ask for a docstring; it got:\n${first}`);
  }
  const appliedShot = artifact("applied.png");
  await page.screenshot({ path: appliedShot });
  publishScreenshot(appliedShot, "vscode-code-action-applied.png");

  // Refine: a refactor.rewrite action, in the light bulb menu (Ctrl+.); its instruction comes
  // from an input box and goes to the server's tandem.refine command.
  const input = page.locator(".quick-input-widget input");
  const askRefine = async () => {
    await page.keyboard.press("Control+.");
    await (await pick(REFINE_TITLE)).click();
    await waitUntil(
      15_000,
      async () => (await input.isVisible()) && (await page.locator(".quick-input-widget").textContent())?.includes("How should Tandem refine its last edit?"),
      async () => `expected an input box asking "How should Tandem refine its last edit?"\n  ${await state()}`,
    );
  };
  // Escape sends nothing: the one chat request after this is the answered Refine's (checked
  // below), and the document keeps the first docstring meanwhile.
  await askRefine();
  await page.keyboard.press("Escape");
  await waitUntil(
    15_000,
    async () => !(await input.isVisible()),
    async () => `expected Escape to close the input box\n  ${await state()}`,
  );
  await expectLines(DOCUMENTED, "the docstring unchanged after Escape");
  await askRefine();
  await page.keyboard.type(INSTRUCTION, { delay: 10 });
  await page.keyboard.press("Enter");
  await expectLines(REFINED_TEXT, "the docstring revised by Refine");
  const refine = lastUser(chats().at(-1)?.body?.messages);
  // The request, built from the document as it is now, shows the previous answer once.
  const previous = /```python\n\s*(.*)\n```/.exec(refine.split("doc comment")[1] ?? "")?.[1];
  const pointed = refine.includes("Your previous answer is in the document now, as shown above.");
  if (chats().length !== 2 || previous !== DOC || !pointed || !refine.includes(`Revise it: ${INSTRUCTION}.`)) {
    throw new Error(`expected a second chat request with the previous answer and "Revise it: ${INSTRUCTION}."; the model got ${chats().length} chat requests, the last:\n${refine}`);
  }

  // Had Escape sent the command without an instruction, the server would have asked with
  // window/showMessageRequest ("Refine ... how?"): a notification with buttons, which stays.
  const toasts = await page.evaluate(() => [...document.querySelectorAll(".notifications-toasts .notification-toast")].map((e) => e.innerText));
  if (toasts.some((t) => t.includes("how?"))) {
    throw new Error(`expected no "Refine ... how?" question from the server after Escape; notifications: ${JSON.stringify(toasts)}`);
  }

  // Saved as shown.
  await page.keyboard.press("Control+S");
  await waitUntil(
    15_000,
    () => fs.readFileSync(file, "utf8") === REFINED_TEXT,
    async () => `expected ${FILE_NAME} saved as ${JSON.stringify(REFINED_TEXT)}\n  ${await state()}`,
  );
});
