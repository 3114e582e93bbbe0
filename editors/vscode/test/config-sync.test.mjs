// package.json's `contributes.configuration` must agree with docs/config.schema.json, the
// server's single source of truth. Regenerate with `npm run sync-config`.
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  configurationFromSchema,
  MACHINE_SCOPED_KEYS,
  packageJsonPath,
  readJson,
  render,
  schemaLeafKeys,
  schemaPath,
  SERVER_CATEGORY_PREFIX,
  withGeneratedConfiguration,
} from "../scripts/sync-config.mjs";

const schema = readJson(schemaPath);
const pkgText = readFileSync(packageJsonPath, "utf8");
const pkg = JSON.parse(pkgText);
const categories = pkg.contributes.configuration;
const serverCategories = categories.filter((c) => c.id.startsWith(SERVER_CATEGORY_PREFIX));
const serverProps = Object.assign({}, ...serverCategories.map((c) => c.properties));

test("package.json is what sync-config.mjs generates from the schema", () => {
  const expected = render(withGeneratedConfiguration(pkg, configurationFromSchema(schema)));
  assert.equal(pkgText, expected, "stale: run `npm run sync-config`");
});

test("one setting per schema key, and no other server setting", () => {
  const fromSchema = schemaLeafKeys(schema).map((k) => `tandem.${k}`).sort();
  assert.deepEqual(Object.keys(serverProps).sort(), fromSchema);
  assert.ok(fromSchema.length >= 30, `only ${fromSchema.length} keys: did the schema's shape change?`);
});

test("types and defaults match the schema", () => {
  for (const [section, prop] of Object.entries(schema.properties)) {
    const def = prop.$ref ? schema.$defs[prop.$ref.split("/").pop()] : undefined;
    const leaves = def?.properties ? Object.entries(def.properties).map(([k, v]) => [`${section}.${k}`, v]) : [[section, prop]];
    for (const [key, leaf] of leaves) {
      const setting = serverProps[`tandem.${key}`];
      const d = leaf.format === "float" && typeof leaf.default === "number" ? Number(leaf.default.toPrecision(7)) : leaf.default;
      assert.deepEqual(setting.default, d, `default of ${key}`);
      if (leaf.type !== undefined) assert.deepEqual(setting.type, leaf.type, `type of ${key}`);
      if (leaf.description !== undefined) assert.ok(setting.markdownDescription, `description of ${key}`);
    }
  }
  assert.deepEqual(serverProps["tandem.backend.kind"].enum, schema.$defs.BackendKind.oneOf.map((v) => v.const));
  assert.deepEqual(serverProps["tandem.completion.trigger"].enum, ["auto", "manual"]);
  assert.equal(serverProps["tandem.backend.temperature"].default, 0.2);
  assert.equal(serverProps["tandem.completion.debounceMs"].default, 75);
});

test("keys that redirect code are machine-scoped, and exist", () => {
  const leaves = schemaLeafKeys(schema);
  for (const key of MACHINE_SCOPED_KEYS) {
    assert.ok(leaves.includes(key), `${key} is not in the schema`);
    assert.equal(serverProps[`tandem.${key}`].scope, "machine", key);
  }
});

test("extension-only settings are outside the server categories", () => {
  const own = categories.filter((c) => !c.id.startsWith(SERVER_CATEGORY_PREFIX));
  assert.deepEqual(Object.keys(Object.assign({}, ...own.map((c) => c.properties))).sort(), ["tandem.serverPath", "tandem.trace.server"]);
  assert.equal(own[0].properties["tandem.serverPath"].scope, "machine");
});

test("a stale package.json is detected", () => {
  const broken = structuredClone(pkg);
  const cat = broken.contributes.configuration.find((c) => c.id === `${SERVER_CATEGORY_PREFIX}.completion`);
  cat.properties["tandem.completion.debounceMs"].default = 76;
  const expected = render(withGeneratedConfiguration(broken, configurationFromSchema(schema)));
  assert.notEqual(render(broken), expected);
});
