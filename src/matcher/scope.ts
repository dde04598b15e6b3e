/**
 * `Knock_Scope` (README, "Many firewalls, one knocktail"): which knocks of a source count together when the hits
 * come from several firewalls. A `firewall` door keys a source's attempts by address and firewall, an `any` door by
 * address alone, so each scope is matched as if by a matcher of its own. Hits that name no firewall (this host's
 * logs, captures) are keyed by address alone: with one firewall, matching is exactly what it always was.
 */
import type { DoorConfig, KnockScope } from '../config/types.js';
import type { KnockHit } from '../hit.js';
import { type SourceKey, sourceText } from './address-map.js';

/** Between address and firewall in a key: neither a canonical address nor a firewall name ever contains it. */
const SEPARATOR = '%';

/** Which scopes the enabled doors use: hits from a firewall are matched once per scope in use. */
export type ScopesInUse = KnockScope | 'both';

export function scopesInUse(doors: ReadonlyArray<{ config: DoorConfig; enabled: boolean }>): ScopesInUse {
  let firewall = false;
  let any = false;
  for (const door of doors) {
    if (!door.enabled) continue;
    if (door.config.knockScope === 'any') any = true;
    else firewall = true;
  }
  return firewall && any ? 'both' : any ? 'any' : 'firewall';
}

/** The key of a source knocking on one firewall (Knock_Scope = firewall). */
export function firewallSourceKey(src: string, firewall: string): string {
  return `${src}${SEPARATOR}${firewall}`;
}

/** The firewall whose knocks a door counts apart for this hit: its own under Knock_Scope = firewall, else none. */
export function scopedFirewall(config: DoorConfig, hit: KnockHit): string | undefined {
  return config.knockScope === 'firewall' ? hit.firewall : undefined;
}

/** The knocking address of a key (keyed by address alone, or by address and firewall). */
export function keyAddress(key: SourceKey): string {
  if (typeof key === 'string') {
    const end = key.indexOf(SEPARATOR);
    if (end >= 0) return key.slice(0, end);
  }
  return sourceText(key);
}
