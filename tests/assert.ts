// The assertions the tests use, built on node:assert (no JSR registry here).
import assert from "node:assert/strict";

/** Deep equality, with a diff on failure. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  assert.deepStrictEqual(actual, expected, msg);
}

/** Deep inequality. */
export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  assert.notDeepStrictEqual(actual, expected, msg);
}

/** Truthiness. */
export function assert_(value: unknown, msg?: string): asserts value {
  assert.ok(value, msg);
}
export { assert_ as assert };

/** `text` contains `part`. */
export function assertStringIncludes(text: string, part: string, msg?: string): void {
  if (!text.includes(part)) {
    throw new assert.AssertionError({
      message: msg ?? `expected ${JSON.stringify(text)} to include ${JSON.stringify(part)}`,
    });
  }
}

/** `text` matches `re`. */
export function assertMatch(text: string, re: RegExp, msg?: string): void {
  assert.match(text, re, msg);
}

/** `fn` throws an instance of `type` (when given); returns the error. */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  type?: new (...args: any[]) => E,
  includes?: string,
): E {
  try {
    fn();
  } catch (err) {
    if (type && !(err instanceof type)) throw err;
    if (includes) assertStringIncludes((err as Error).message, includes);
    return err as E;
  }
  throw new assert.AssertionError({ message: "expected the function to throw" });
}

/** The promise rejects with an instance of `type` (when given); returns the error. */
export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  type?: new (...args: any[]) => E,
  includes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (err) {
    if (type && !(err instanceof type)) throw err;
    if (includes) assertStringIncludes((err as Error).message, includes);
    return err as E;
  }
  throw new assert.AssertionError({ message: "expected the promise to reject" });
}
