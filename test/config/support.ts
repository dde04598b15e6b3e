/** Helpers shared by the config tests: parse text under a fixed path and collect what went wrong. */
import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/config/parse.js';
import { ConfigError, type Config, type Diagnostic, type DoorConfig } from '../../src/config/types.js';

/** A path that does not exist: parsing never reads it, it only names the file and anchors relative paths. */
export const CONF = '/etc/knocktail/knockd.conf';

export function parse(text: string, path = CONF): Config {
  return parseConfigText(text, path);
}

/** The one door of `[door]` followed by `body`. */
export function door(body: string): DoorConfig {
  const config = parse(`[door]\n${body}`);
  assert.equal(config.doors.length, 1);
  return config.doors[0]!;
}

/** Every problem a config is rejected for (fails when it is accepted). */
export function problems(text: string, path = CONF): Diagnostic[] {
  let diagnostics: Diagnostic[] = [];
  assert.throws(
    () => parseConfigText(text, path),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
      diagnostics = error.diagnostics;
      return true;
    },
  );
  return diagnostics;
}

/** The single problem of a rejected config. */
export function problem(text: string, path = CONF): Diagnostic {
  const diagnostics = problems(text, path);
  assert.equal(diagnostics.length, 1, `expected one problem, got: ${JSON.stringify(diagnostics, null, 2)}`);
  return diagnostics[0]!;
}

/** `problem()` for a config whose door is otherwise valid. */
export function doorProblem(body: string): Diagnostic {
  return problem(`[door]\nsequence = 7000\n${body}`);
}
