/**
 * What the tests and benchmarks that read the kernel's own log share: LOG lines from a network namespace other
 * than the first reach the kernel log only with net.netfilter.nf_log_all_netns=1 (held here, restored after),
 * and /proc/kmsg hands each message to one reader only (so a private rsyslog must not compete with the host's).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from '../helpers.js';

export const LOG_ALL_NETNS = '/proc/sys/net/netfilter/nf_log_all_netns';
/** Who holds nf_log_all_netns at 1 (a file per test process) and the value to restore: runs may overlap. */
const LOG_ALL_NETNS_HOLDERS = '/run/knocktail-test-nf_log_all_netns';

/**
 * Sets nf_log_all_netns to 1 until the returned function is called. Test runs may overlap (two checkouts, a
 * re-run): the first records the value found, the last one out restores it; a run that was killed left its
 * record, so the value is never lost.
 */
export function holdLogAllNetns(): () => void {
  mkdirSync(LOG_ALL_NETNS_HOLDERS, { recursive: true, mode: 0o700 });
  const original = join(LOG_ALL_NETNS_HOLDERS, 'original');
  const self = join(LOG_ALL_NETNS_HOLDERS, String(process.pid));
  const otherHolders = () => readdirSync(LOG_ALL_NETNS_HOLDERS).filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid && isAlive(Number(name)));
  if (!existsSync(original)) writeFileSync(original, readFileSync(LOG_ALL_NETNS, 'utf8').trim());
  writeFileSync(self, '');
  writeFileSync(LOG_ALL_NETNS, '1');
  return () => {
    rmSync(self, { force: true });
    if (otherHolders().length > 0) return;
    writeFileSync(LOG_ALL_NETNS, readFileSync(original, 'utf8'));
    rmSync(LOG_ALL_NETNS_HOLDERS, { recursive: true, force: true });
  };
}


/** Whether a process other than ours holds /proc/kmsg open: two imklog readers would split the kernel's messages between them. */
export function otherKmsgReader(): boolean {
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to look at
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === '/proc/kmsg') return true;
      } catch {
        // closed meanwhile
      }
    }
  }
  return false;
}
