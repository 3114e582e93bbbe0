#!/usr/bin/env node
// Generates the server's part of `contributes.configuration` in package.json from
// docs/config.schema.json, the single source of truth for Tandem's configuration.
//
//   node scripts/sync-config.mjs          rewrite package.json
//   node scripts/sync-config.mjs --check  exit 1 when package.json is stale
//
// Every leaf of the schema becomes one `tandem.<dotted.key>` setting: the sections (`backend`,
// `completion`, ...) are flattened one level; deeper objects (`backend.headers`,
// `backend.fallback`, `completion.languages`) stay single object-valued settings.
// No dependencies: plain node.

import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const extensionDir = join(here, "..");
export const schemaPath = join(extensionDir, "..", "..", "docs", "config.schema.json");
export const packageJsonPath = join(extensionDir, "package.json");

/** Categories generated here have ids starting with this; the others are the extension's own. */
export const SERVER_CATEGORY_PREFIX = "tandem.server";

/**
 * Keys that decide where code and credentials go (docs/configuration.md, "A cloned repository
 * cannot redirect your code"), plus the switch that trusts workspace files. VS Code workspace
 * settings come with cloned code just like `tandem.toml`, so these are `machine`-scoped: only
 * the user's own settings may set them.
 */
export const MACHINE_SCOPED_KEYS = [
  "backend.kind",
  "backend.url",
  "backend.apiKeyEnv",
  "backend.headers",
  "backend.caCertPath",
  "backend.requestBody",
  "backend.tokenizerPath",
  "backend.fallback",
  "trustWorkspaceConfig",
];

const SECTION_TITLES = {
  backend: "Backend",
  completion: "Completion",
  context: "Context",
  workspace: "Workspace",
};

function defName(ref) {
  const m = /^#\/\$defs\/(.+)$/.exec(ref ?? "");
  if (!m) throw new Error(`unsupported $ref ${ref}`);
  return m[1];
}

/** Schema descriptions are Rust doc comments: single newlines are wrapping, not breaks. */
export function cleanDescription(text) {
  return text
    .split(/\n{2,}/)
    .map((p) => p.replace(/\s*\n\s*/g, " ").trim())
    .join("\n\n");
}

/** f32 defaults arrive widened (0.20000000298023224); show them as written (0.2). */
function cleanNumber(value, format) {
  if (typeof value === "number" && format === "float") return Number(value.toPrecision(7));
  return value;
}

function isEnumDef(def) {
  return Array.isArray(def.oneOf) && def.oneOf.every((v) => v.const !== undefined);
}

function isObjectDef(def) {
  return def.type === "object" && def.properties !== undefined;
}

/** Converts one property schema into a VS Code setting schema. */
function convert(prop, defs, depth) {
  const out = {};
  if (prop.$ref) {
    const def = defs[defName(prop.$ref)];
    if (isEnumDef(def)) {
      out.type = "string";
      out.enum = def.oneOf.map((v) => v.const);
      out.enumDescriptions = def.oneOf.map((v) => cleanDescription(v.description ?? ""));
    } else if (isObjectDef(def)) {
      Object.assign(out, objectSchema(def, defs, depth));
    } else {
      throw new Error(`unsupported definition ${prop.$ref}`);
    }
  } else if (Array.isArray(prop.anyOf)) {
    // `X or null`: only the nullable object form is used by the schema (backend.fallback).
    const refs = prop.anyOf.filter((v) => v.$ref);
    const nulls = prop.anyOf.filter((v) => v.type === "null");
    if (refs.length !== 1 || nulls.length !== 1 || prop.anyOf.length !== 2) {
      throw new Error(`unsupported anyOf ${JSON.stringify(prop.anyOf)}`);
    }
    const def = defs[defName(refs[0].$ref)];
    if (!isObjectDef(def)) throw new Error(`unsupported anyOf target ${refs[0].$ref}`);
    Object.assign(out, objectSchema(def, defs, depth));
    out.type = ["object", "null"];
  }
  if (prop.type !== undefined) out.type = prop.type;
  if (prop.items !== undefined) out.items = prop.items;
  if (prop.additionalProperties !== undefined) out.additionalProperties = prop.additionalProperties;
  if (prop.minimum !== undefined) out.minimum = prop.minimum;
  if (prop.maximum !== undefined) out.maximum = prop.maximum;
  if ("default" in prop) out.default = cleanNumber(prop.default, prop.format);
  if (prop.description) out.markdownDescription = cleanDescription(prop.description);
  return out;
}

/** An object-valued setting (only `backend.fallback`): its keys inlined once, not recursively. */
function objectSchema(def, defs, depth) {
  if (depth > 0) return { type: "object" };
  const properties = {};
  for (const [k, v] of Object.entries(def.properties)) {
    const s = convert(v, defs, depth + 1);
    delete s.default;
    properties[k] = s;
  }
  return { type: "object", properties, additionalProperties: false };
}

/**
 * The configuration categories for package.json, in schema order: one per section, then one for
 * the top-level keys.
 */
export function configurationFromSchema(schema) {
  const defs = schema.$defs ?? {};
  const categories = [];
  const general = {};
  for (const [key, prop] of Object.entries(schema.properties)) {
    const def = prop.$ref ? defs[defName(prop.$ref)] : undefined;
    if (def && isObjectDef(def)) {
      const properties = {};
      for (const [sub, subProp] of Object.entries(def.properties)) {
        properties[`tandem.${key}.${sub}`] = withScope(`${key}.${sub}`, convert(subProp, defs, 0));
      }
      categories.push({
        id: `${SERVER_CATEGORY_PREFIX}.${key}`,
        title: `Tandem: ${SECTION_TITLES[key] ?? key}`,
        properties,
      });
    } else {
      general[`tandem.${key}`] = withScope(key, convert(prop, defs, 0));
    }
  }
  if (Object.keys(general).length > 0) {
    categories.push({ id: `${SERVER_CATEGORY_PREFIX}.general`, title: "Tandem: Trust", properties: general });
  }
  return categories;
}

function withScope(key, setting) {
  return MACHINE_SCOPED_KEYS.includes(key) ? { ...setting, scope: "machine" } : setting;
}

/** The dotted server keys (without `tandem.`) every leaf of the schema yields. */
export function schemaLeafKeys(schema) {
  const defs = schema.$defs ?? {};
  const keys = [];
  for (const [key, prop] of Object.entries(schema.properties)) {
    const def = prop.$ref ? defs[defName(prop.$ref)] : undefined;
    if (def && isObjectDef(def)) {
      for (const sub of Object.keys(def.properties)) keys.push(`${key}.${sub}`);
    } else {
      keys.push(key);
    }
  }
  return keys;
}

/** package.json with its server categories replaced by `generated`, extension ones kept first. */
export function withGeneratedConfiguration(pkg, generated) {
  const existing = pkg.contributes?.configuration ?? [];
  const own = (Array.isArray(existing) ? existing : [existing]).filter(
    (c) => !String(c.id ?? "").startsWith(SERVER_CATEGORY_PREFIX),
  );
  return {
    ...pkg,
    contributes: { ...pkg.contributes, configuration: [...own, ...generated] },
  };
}

export function readJson(path) {
  return JSON.parse(readFileSync(path, "utf8"));
}

export function render(pkg) {
  return JSON.stringify(pkg, null, 2) + "\n";
}

function main() {
  const check = process.argv.includes("--check");
  const schema = readJson(schemaPath);
  const current = readFileSync(packageJsonPath, "utf8");
  const next = render(withGeneratedConfiguration(JSON.parse(current), configurationFromSchema(schema)));
  if (check) {
    if (next !== current) {
      console.error("package.json's configuration is stale: run `node scripts/sync-config.mjs`");
      process.exit(1);
    }
    console.log("package.json's configuration matches docs/config.schema.json");
  } else if (next !== current) {
    writeFileSync(packageJsonPath, next);
    console.log("package.json updated from docs/config.schema.json");
  } else {
    console.log("package.json already up to date");
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
