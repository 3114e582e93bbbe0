import { strict as assert } from "node:assert";
import { test } from "node:test";
import { REFINE_COMMAND, refineArguments } from "../src/refine";

test("the instruction joins the server's first argument", () => {
  assert.equal(REFINE_COMMAND, "tandem.refine");
  assert.deepEqual(refineArguments([{ id: 3 }], "use iterators"), [{ id: 3, instruction: "use iterators" }]);
  // Trimmed; further arguments kept as they are.
  assert.deepEqual(refineArguments([{ id: 3 }, "x"], "  shorter \n"), [{ id: 3, instruction: "shorter" }, "x"]);
  // The original arguments are not modified.
  const args = [{ id: 1 }];
  refineArguments(args, "more detail");
  assert.deepEqual(args, [{ id: 1 }]);
});

test("cancelled or blank: nothing to send", () => {
  assert.equal(refineArguments([{ id: 3 }], undefined), undefined);
  assert.equal(refineArguments([{ id: 3 }], ""), undefined);
  assert.equal(refineArguments([{ id: 3 }], "   "), undefined);
});

test("no object argument: the instruction alone (the server then says what it needs)", () => {
  assert.deepEqual(refineArguments([], "shorter"), [{ instruction: "shorter" }]);
});
