'use strict';
/*
 * The task's entry point, run by the agent's Node20_1 or Node24 handler.
 *
 * Dependency-free on purpose: loading azure-pipelines-task-lib deletes INPUT_*, ENDPOINT_AUTH_*
 * and SECRET_* from the environment, and the Python side needs them. This shim only finds a
 * Python >= 3.9, runs container_mapping.task with the agent's environment, and keeps the step's
 * promises when Python cannot: the whole step ends within the timeoutSeconds input, and a missing
 * Python, a crash or a kill ends in one warning and exit 0 (with failOnError: one error, a failed
 * task and exit 1).
 *
 * Which Python: python3 and python on the agent's own PATH, else `py -3` on Windows. Nothing a
 * pipeline step can set chooses it: a step may set variables (`task.setvariable`) and prepend to
 * PATH (`task.prependpath`), and what this runs gets the job's access token. So on Linux the PATH
 * searched is the one the agent's worker process (this process's parent) started with, read from
 * /proc, which no step can change; where that cannot be read, the process's own PATH is used.
 * Each candidate runs with -E -s -S: no site
 * (a .pth importing certifi costs 40 ms here), no user site, no PYTHON* variables. The package
 * needs only the standard library; the bootstrap below puts it first on sys.path, drops the
 * working directory (a json.py in the repository must not shadow the standard library), exits
 * 87 on a Python older than 3.9 (the next candidate is tried), and writes UTF-8 to the agent.
 *
 * Which package: the copy vendored beside this file (python/container_mapping), else the
 * repository checkout this file lives in.
 *
 * The budget holds whatever the child does: Python runs as the leader of a process group of its
 * own, the whole group is killed at the deadline (a `python3` that is a wrapper script, or
 * anything it started, dies with it), and the step ends then without waiting for pipes that an
 * escaped grandchild may still hold.
 */
const childProcess = require('child_process');
const fs = require('fs');
const path = require('path');

const EXIT_REPORTED = 3; // Python reported the fault itself, as an error (failOnError)
const EXIT_TOO_OLD = 87; // the bootstrap: this interpreter is older than 3.9
const NOT_RUNNABLE = new Set([EXIT_TOO_OLD, 126, 127, 9009]); // try the next candidate
const DEFAULT_BUDGET = 30;
const STDERR_KEPT = 64 * 1024;
const GRACE_MS = 200; // after the child exits, how long its pipes may take to close
// The one grammar of timeoutSeconds, shared with container_mapping/task.py (TIMEOUT_PATTERN).
const TIMEOUT_PATTERN = /^[0-9]{1,4}(\.[0-9]{1,3})?$/;

const BOOTSTRAP = [
  'import sys',
  'if sys.version_info < (3, 9): sys.exit(87)',
  "if sys.path and sys.path[0] in ('', '.'): del sys.path[0]",
  'sys.path.insert(0, sys.argv[1])',
  'for s in (sys.stdout, sys.stderr): s.reconfigure(encoding="utf-8", errors="replace")',
  'from container_mapping.task import main',
  'sys.exit(main(sys.argv[2:]))',
].join('\n');

function escapeMessage(text) {
  return String(text).replace(/%/g, '%AZP25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function isTrue(value) {
  return /^(true|1|yes|on)$/i.test(String(value || '').trim());
}

function budgetSeconds(env) {
  const text = String(env.INPUT_TIMEOUTSECONDS || '').trim();
  if (!TIMEOUT_PATTERN.test(text)) return DEFAULT_BUDGET; // Python says so, once
  const value = Number(text);
  return value >= 1 && value <= 3600 ? value : DEFAULT_BUDGET;
}

function packageRoot() {
  const vendored = path.join(__dirname, 'python');
  if (fs.existsSync(path.join(vendored, 'container_mapping', 'task.py'))) return vendored;
  return path.join(__dirname, '..');
}

function isExecutable(file) {
  try {
    if (!fs.statSync(file).isFile()) return false;
    if (process.platform !== 'win32') fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch (err) {
    return false;
  }
}

// The PATH the agent's worker process started with (Linux), else this process's own.
function trustedPath(env) {
  if (process.platform === 'linux') {
    try {
      const environ = fs.readFileSync(`/proc/${process.ppid}/environ`, 'latin1');
      const entry = environ.split('\0').find((item) => item.startsWith('PATH='));
      if (entry) return entry.slice(5);
    } catch (err) {
      // not readable: fall back to our own PATH
    }
  }
  return String(env.PATH || env.Path || '');
}

function onPath(searchPath, name) {
  const windows = process.platform === 'win32';
  const dirs = searchPath.split(path.delimiter).filter((dir) => path.isAbsolute(dir));
  const found = [];
  for (const dir of dirs) {
    // The Microsoft Store's python.exe aliases open the Store instead of running Python.
    if (windows && /[\\/]WindowsApps[\\/]?$/i.test(dir)) continue;
    const file = path.join(dir, windows ? `${name}.exe` : name);
    if (isExecutable(file)) found.push(file);
  }
  return found;
}

function candidates(env) {
  const list = [];
  const searchPath = trustedPath(env);
  for (const name of ['python3', 'python']) {
    for (const file of onPath(searchPath, name)) list.push([file, []]);
  }
  if (process.platform === 'win32') {
    for (const file of onPath(searchPath, 'py')) list.push([file, ['-3']]);
  }
  const seen = new Set();
  return list.filter(([file, args]) => {
    const key = `${file} ${args.join(' ')}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

class Step {
  constructor(env) {
    this.env = env;
    this.failOnError = isTrue(env.INPUT_FAILONERROR);
    this.command = String(env.INPUT_COMMAND || 'post-job').trim() || 'post-job';
    this.budget = budgetSeconds(env);
    // Python's own deadline leaves a reserve for the kill, the last line and Node's exit.
    const reserve = Math.min(2, this.budget * 0.2);
    this.pythonBudget = this.budget - reserve;
    this.killAfter = this.budget - reserve / 2;
    this.started = Date.now();
  }

  write(line) {
    process.stdout.write(`${line}\n`);
  }

  fault(message) {
    const text = escapeMessage(`container-mapping: ${message}`);
    if (this.failOnError) {
      this.write(`##vso[task.logissue type=error]${text}`);
      this.write('##vso[task.complete result=Failed;]container-mapping failed (failOnError is true)');
      return 1;
    }
    this.write(`##vso[task.logissue type=warning]${text}`);
    return 0;
  }

  childEnv() {
    const deadline = (this.started + this.pythonBudget * 1000) / 1000;
    return Object.assign({}, this.env, { CONTAINER_MAPPING_DEADLINE: deadline.toFixed(3) });
  }

  run(list, done) {
    if (list.length === 0) return done(this.noPython());
    this.child = null;
    const [file, prefix] = list[0];
    const args = prefix.concat(['-E', '-s', '-S', '-c', BOOTSTRAP, packageRoot(), this.command]);
    const windows = process.platform === 'win32';
    const child = childProcess.spawn(file, args, {
      env: this.childEnv(),
      stdio: ['ignore', 'inherit', 'pipe'],
      windowsHide: true,
      detached: !windows, // a process group of its own, killed whole at the deadline
    });
    this.child = child;
    let stderr = '';
    let settled = false;
    let grace = null;
    const finish = (outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(grace);
      child.stderr.destroy();
      outcome();
    };
    const left = this.started + this.killAfter * 1000 - Date.now();
    const timer = setTimeout(() => {
      killGroup(child);
      finish(() => done(this.fault(this.killedMessage()), true));
    }, Math.max(left, 0));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      if (stderr.length < STDERR_KEPT) stderr += chunk.slice(0, STDERR_KEPT - stderr.length);
    });
    child.stderr.on('error', () => {});
    const ended = (code, signal) => finish(() => {
      killGroup(child); // whatever it left behind
      if (NOT_RUNNABLE.has(code)) return this.run(list.slice(1), done);
      if (code === 0) return done(0);
      if (code === EXIT_REPORTED) return done(this.failOnError ? 1 : 0);
      return done(this.crashed(file, code, signal, stderr));
    });
    child.on('error', () => finish(() => this.run(list.slice(1), done)));
    // 'close' waits for the pipes too; a grandchild holding them must not hold the step.
    child.on('exit', (code, signal) => {
      clearTimeout(timer); // it ended in time: its own last line stands, no second one
      grace = setTimeout(() => ended(code, signal), GRACE_MS);
    });
    child.on('close', (code, signal) => ended(code, signal));
    return undefined;
  }

  noPython() {
    if (this.command === 'pre-job') {
      // Record the start all the same; post-job, which needs Python too, reports the fault once.
      this.write(
        '##vso[task.setvariable variable=ContainerMapping.JobStart;isreadonly=true]' +
          new Date(this.started).toISOString()
      );
      return 0;
    }
    return this.fault(
      'no Python 3.9 or later found (tried python3 and python on PATH' +
        (process.platform === 'win32' ? ', and py -3' : '') +
        '); install Python 3 on the agent, or turn this step off with the variable ' +
        'ContainerMapping.Disabled: true'
    );
  }

  killedMessage() {
    return (
      `stopped after ${this.budget} s, the time budget (input timeoutSeconds); nothing was ` +
      'reported. Is the Docker engine or the network hanging?'
    );
  }

  crashed(file, code, signal, stderr) {
    const lines = stderr.split(/\r?\n/).filter((l) => l.trim());
    for (const line of lines) this.write(`##vso[task.debug]${escapeMessage(line)}`);
    const last = lines.length ? `: ${lines[lines.length - 1].slice(0, 300)}` : '';
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    return this.fault(
      `the Python step (${file}) ${how}${last}; set System.Debug to true for details`
    );
  }
}

function killGroup(child) {
  try {
    if (process.platform === 'win32') child.kill('SIGKILL');
    else process.kill(-child.pid, 'SIGKILL');
  } catch (err) {
    // already gone
  }
}

function main() {
  const env = process.env;
  if (isTrue(env.CONTAINERMAPPING_DISABLED)) {
    process.stdout.write('container-mapping: turned off by the variable ContainerMapping.Disabled\n');
    return;
  }
  const step = new Step(env);
  // The agent cancelling or timing out the step stops this process: the group goes with it.
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => {
      if (step.child) killGroup(step.child);
      process.exit(step.failOnError ? 1 : 0);
    });
  }
  step.run(candidates(env), (code, timedOut) => {
    process.exitCode = code;
    // At the deadline nothing may keep the step alive: no pipe, no timer, no grandchild.
    if (timedOut) process.exit(code);
  });
}

main();
