// Validate AsyncAPI documents with the official parser (@asyncapi/parser v3).
//
//   node tests/asyncapi_validate.mjs TOOLS_DIR DOCUMENT...
//
// TOOLS_DIR is the npm prefix the parser is installed in (make installs it in
// .tools/asyncapi). Prints one JSON object: the parser's version and, per
// document, whether it parsed and every diagnostic ({severity, code, message,
// path}); severity 0 is an error, 1 a warning, 2 info, 3 a hint. Exits 1 when
// a document has an error or could not be parsed, 2 on bad usage.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const [toolsDir, ...documents] = process.argv.slice(2);
if (!toolsDir || documents.length === 0) {
  console.error("usage: node asyncapi_validate.mjs TOOLS_DIR DOCUMENT...");
  process.exit(2);
}

const require = createRequire(join(resolve(toolsDir), "package.json"));
const { Parser } = require("@asyncapi/parser");
const { version } = require("@asyncapi/parser/package.json");

const parser = new Parser();
const reports = [];
for (const path of documents) {
  const { document, diagnostics } = await parser.parse(readFileSync(path, "utf8"), {
    source: resolve(path),
  });
  const reported = diagnostics.map((d) => ({
    severity: d.severity,
    code: String(d.code),
    message: d.message,
    path: d.path.join("/"),
  }));
  const ok = document !== undefined && !reported.some((d) => d.severity === 0);
  reports.push({ path, parsed: document !== undefined, ok, diagnostics: reported });
}
console.log(JSON.stringify({ parser: version, documents: reports }));
process.exit(reports.every((r) => r.ok) ? 0 : 1);
