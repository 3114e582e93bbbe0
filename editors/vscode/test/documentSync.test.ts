import { strict as assert } from "node:assert";
import { test } from "node:test";
import { OpenDocuments } from "../src/documentSync";

type Doc = { uri: { toString(): string }; isClosed?: boolean };
type Change = { document: Doc };

function doc(uri: string, isClosed = false): Doc {
  return { uri: { toString: () => uri }, isClosed };
}

function recorder() {
  const sent: string[] = [];
  const next = (method: string) => async (d: Doc | Change) => {
    sent.push(`${method} ${"document" in d ? d.document.uri.toString() : d.uri.toString()}`);
  };
  return { sent, next };
}

test("a close without an open is not sent (VS Code's settings.json at startup)", async () => {
  const docs = new OpenDocuments();
  const m = docs.middleware<Doc, Change>();
  const { sent, next } = recorder();
  const settings = doc("file:///u/User/settings.json");
  await m.didChange({ document: settings }, next("didChange"));
  await m.didSave(settings, next("didSave"));
  await m.didClose(settings, next("didClose"));
  assert.deepEqual(sent, []);
});

test("open, change, save, close are sent in pairs; a second close is not", async () => {
  const docs = new OpenDocuments();
  const m = docs.middleware<Doc, Change>();
  const { sent, next } = recorder();
  const a = doc("file:///w/a.py");
  await m.didOpen(a, next("didOpen"));
  assert.ok(docs.has("file:///w/a.py"));
  await m.didChange({ document: a }, next("didChange"));
  await m.didSave(a, next("didSave"));
  await m.didClose(a, next("didClose"));
  await m.didClose(a, next("didClose"));
  assert.deepEqual(sent, ["didOpen file:///w/a.py", "didChange file:///w/a.py", "didSave file:///w/a.py", "didClose file:///w/a.py"]);
  assert.ok(!docs.has("file:///w/a.py"));
  // Reopened: paired again.
  await m.didOpen(a, next("didOpen"));
  await m.didClose(a, next("didClose"));
  assert.equal(sent.length, 6);
});

test("a queued open flushed after the document closed is dropped, and so is its close", async () => {
  const docs = new OpenDocuments();
  const m = docs.middleware<Doc, Change>();
  const { sent, next } = recorder();
  const closed = doc("file:///u/Machine/settings.json", true);
  await m.didClose(closed, next("didClose"));
  await m.didOpen(closed, next("didOpen"));
  assert.deepEqual(sent, []);
  assert.ok(!docs.has("file:///u/Machine/settings.json"));
});

test("a close waits until the open is sent; a second open is not sent", async () => {
  const docs = new OpenDocuments();
  const m = docs.middleware<Doc, Change>();
  const sent: string[] = [];
  let finishOpen: () => void = () => undefined;
  const settings = doc("file:///u/Machine/settings.json");
  // The open is slow to reach the wire (flushed from the client's queue).
  const opening = m.didOpen(settings, async () => {
    await new Promise<void>((resolve) => (finishOpen = resolve));
    sent.push("didOpen");
  });
  const closing = m.didClose(settings, async () => {
    sent.push("didClose");
  });
  const reopening = m.didOpen(settings, async () => {
    sent.push("didOpen again");
  });
  await Promise.resolve();
  assert.deepEqual(sent, [], "nothing overtakes the open");
  finishOpen();
  await Promise.all([opening, closing, reopening]);
  assert.deepEqual(sent, ["didOpen", "didClose", "didOpen again"]);

  // Two opens in a row: the second is not sent.
  const twice: string[] = [];
  const b = doc("file:///w/b.py");
  await m.didOpen(b, async () => void twice.push("didOpen"));
  await m.didOpen(b, async () => void twice.push("didOpen"));
  assert.deepEqual(twice, ["didOpen"]);
});

test("with nothing in flight, a notification is sent synchronously", () => {
  const docs = new OpenDocuments();
  const m = docs.middleware<Doc, Change>();
  const sent: string[] = [];
  const a = doc("file:///w/a.py");
  void m.didOpen(a, async () => void sent.push("didOpen"));
  assert.deepEqual(sent, ["didOpen"]);
});
