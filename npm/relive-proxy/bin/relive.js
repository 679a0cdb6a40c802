#!/usr/bin/env node
// relive's npm launcher: finds the prebuilt binary in the platform package npm installed for
// this machine (one of the optionalDependencies, chosen by their `os` and `cpu` fields) and runs
// it with the same arguments, terminal and exit status. Nothing is downloaded here.
"use strict";

const { spawn } = require("child_process");

const platform = `${process.platform}-${process.arch}`;
const supported = ["linux-x64", "linux-arm64", "darwin-x64", "darwin-arm64"];
const pkg = `relive-proxy-${platform}`;

function binary() {
  if (process.env.RELIVE_BINARY) {
    return process.env.RELIVE_BINARY;
  }
  try {
    return require.resolve(`${pkg}/bin/relive`);
  } catch {
    const why = supported.includes(platform)
      ? `its package ${pkg} is not installed (was the install run with --no-optional, or copied ` +
        `from another machine?). Reinstall with: npm install relive-proxy`
      : `relive has no prebuilt binary for ${platform}; build it with: cargo install --path . ` +
        `(from a clone of relive's repository)`;
    process.stderr.write(`relive: cannot run on this machine: ${why}\n`);
    process.exit(1);
  }
}

const program = binary();
const child = spawn(program, process.argv.slice(2), { stdio: "inherit" });
child.on("error", (error) => {
  process.stderr.write(`relive: cannot start ${program}: ${error.message}\n`);
  process.exit(1);
});
// Ctrl-C reaches relive directly (the terminal signals the whole group); the launcher waits for
// it to stop. A signal sent to the launcher alone (a process manager stopping it) is passed on.
process.on("SIGINT", () => {});
for (const signal of ["SIGTERM", "SIGHUP"]) {
  process.on(signal, () => child.kill(signal));
}
child.on("exit", (code, signal) => {
  if (signal) {
    // Stopped by a signal: the launcher ends the same way, so its caller sees it.
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code ?? 1);
});
