import { readFileSync } from 'node:fs';

/**
 * SIGKILLs what is left of the processes a test's stack reported, but only those whose
 * environment names the test's own state folder. A pid alone does not say who it is once its
 * process has gone: the kernel hands the number to another process or thread (pid_max is 32768
 * on Linux by default and the suite starts thousands of each), and the signal would kill a
 * stranger, such as another test's service or a mocha worker. Where /proc cannot be read, nothing
 * is killed.
 */
export function killLeftovers(pids: Iterable<number>, stateDir: string): void {
  for (const pid of pids) {
    if (!runsInStack(pid, stateDir)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // It exited meanwhile.
    }
  }
}

/** Whether `pid` is a live process whose environment names `stateDir` (see {@link killLeftovers}). */
export function runsInStack(pid: number, stateDir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`AESE_STATE_DIR=${stateDir}`);
  } catch {
    return false;
  }
}
