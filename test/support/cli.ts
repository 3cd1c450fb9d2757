import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT } from '@aese/runtime';

const AESE_BIN = join(REPO_ROOT, 'bin', 'aese.mjs');

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real `aese` binary with only the given AESE settings (none inherited from the shell). */
export function aese(args: readonly string[], env: Record<string, string>): Promise<CliResult> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^AESE_|_ADDR$/.test(k)));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AESE_BIN, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    child.once('error', reject);
    child.once('close', code => resolve({ code, stdout, stderr }));
  });
}

export function expectOneLineError(res: CliResult, code: number, pattern: RegExp): void {
  expect(res.code, res.stderr).to.equal(code);
  expect(res.stderr.trimEnd().split('\n'), res.stderr).to.have.length(1);
  expect(res.stderr).to.match(/^aese: /);
  expect(res.stderr).to.match(pattern);
  expect(res.stderr).not.to.match(/\bat .+:\d+:\d+/);
}
