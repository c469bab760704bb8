// Loads extension.js outside VS Code (with a stand-in `vscode` module) and checks that the
// client library resolves and that the server binary is found on PATH, by path, or not at all.
"use strict";
const assert = require("assert");
const Module = require("module");
const path = require("path");

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return request === "vscode" ? "vscode" : resolve.call(this, request, ...rest);
};
require.cache.vscode = { id: "vscode", filename: "vscode", loaded: true, exports: {} };
// vscode-languageclient/node reads nothing from `vscode` at load time beyond what it imports.
require.cache.vscode.exports = new Proxy({}, { get: () => function () {} });

const { resolveBinary, activate, deactivate } = require(path.join(__dirname, "..", "extension.js"));
assert.strictEqual(typeof activate, "function");
assert.strictEqual(typeof deactivate, "function");
const sh = resolveBinary("sh");
assert.ok(sh && sh.endsWith("/sh"), `sh is found on PATH: ${sh}`);
assert.strictEqual(resolveBinary("/bin/sh"), "/bin/sh");
assert.strictEqual(resolveBinary("pipe-no-such-binary-anywhere"), undefined);
assert.strictEqual(resolveBinary("/nonexistent/pipe"), undefined);
const fs = require("fs");
const os = require("os");
const plain = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pipe-ext-")), "pipe");
fs.writeFileSync(plain, "not a program", { mode: 0o644 });
assert.strictEqual(resolveBinary(plain), undefined, "a file without an execute bit");
console.log("extension.js: loads, and finds (or reports missing) the server binary");
