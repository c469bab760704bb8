// The pipe extension: starts `pipe lsp` (the binary set in `pipe.server.path`, or `pipe` on
// PATH) with vscode-languageclient, and says clearly what to do when it cannot be found.
"use strict";

const fs = require("fs");
const path = require("path");
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

/** The executable `setting` names: a path with a slash as given, else looked up on PATH. */
function resolveBinary(setting) {
  const isExecutable = (candidate) => {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      const stat = fs.statSync(candidate);
      // access(X_OK) passes any file for root: also ask for an execute bit.
      return stat.isFile() && (process.platform === "win32" || (stat.mode & 0o111) !== 0);
    } catch {
      return false;
    }
  };
  if (setting.includes("/") || setting.includes("\\")) {
    return isExecutable(setting) ? setting : undefined;
  }
  const extensions = process.platform === "win32" ? ["", ".exe"] : [""];
  for (const dir of (process.env.PATH || "").split(path.delimiter)) {
    for (const extension of extensions) {
      const candidate = path.join(dir, setting + extension);
      if (dir && isExecutable(candidate)) {
        return candidate;
      }
    }
  }
  return undefined;
}

async function start() {
  const setting = vscode.workspace.getConfiguration("pipe").get("server.path", "pipe") || "pipe";
  const binary = resolveBinary(setting);
  if (!binary) {
    const choice = await vscode.window.showErrorMessage(
      `pipe: the language server was not started: \`${setting}\` was not found` +
        (setting.includes("/") ? " or is not executable." : " on PATH.") +
        " Install pipe (cargo install --path .) or set `pipe.server.path` to the pipe binary.",
      "Open Settings"
    );
    if (choice === "Open Settings") {
      vscode.commands.executeCommand("workbench.action.openSettings", "pipe.server.path");
    }
    return;
  }
  const server = { command: binary, args: ["lsp"], transport: TransportKind.stdio };
  client = new LanguageClient(
    "pipe",
    "pipe language server",
    { run: server, debug: server },
    { documentSelector: [{ language: "pipe" }] }
  );
  try {
    await client.start();
  } catch (error) {
    vscode.window.showErrorMessage(`pipe: \`${binary} lsp\` failed to start: ${error.message}`);
    client = undefined;
  }
}

async function stop() {
  if (client) {
    const running = client;
    client = undefined;
    await running.stop();
  }
}

async function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand("pipe.restartServer", async () => {
      await stop();
      await start();
    }),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration("pipe.server.path")) {
        await stop();
        await start();
      }
    })
  );
  await start();
}

function deactivate() {
  return stop();
}

module.exports = { activate, deactivate, resolveBinary };
