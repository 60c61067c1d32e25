// Validates an OpenAPI description with @apidevtools/swagger-parser: the
// document against the OpenAPI 3.x schema, and every $ref resolved (files
// beside it included).
// Usage: node validate.cjs TOOLS_DIR SPEC
"use strict";

const path = require("node:path");
const { createRequire } = require("node:module");

const [toolsDir, spec] = process.argv.slice(2);
if (!toolsDir || !spec) {
  console.error("usage: node validate.cjs TOOLS_DIR SPEC");
  process.exit(2);
}

// The parser lives in the build directory's node_modules, not beside this file.
const SwaggerParser = createRequire(path.join(path.resolve(toolsDir), "package.json"))("@apidevtools/swagger-parser");

const methods = new Set(["get", "put", "post", "delete", "options", "head", "patch", "trace"]);

SwaggerParser.validate(spec)
  .then((api) => {
    const operations = Object.values(api.paths || {}).reduce(
      (n, item) => n + Object.keys(item).filter((k) => methods.has(k)).length,
      0,
    );
    console.log(
      `swagger-parser: ${spec} is a valid OpenAPI ${api.openapi} description ` +
        `(${Object.keys(api.paths || {}).length} paths, ${operations} operations)`,
    );
  })
  .catch((err) => {
    console.error(`swagger-parser: ${spec} is not valid:\n${err.message}`);
    process.exit(1);
  });
