/** The error a promise rejects with (or a function throws); fails the test if there is none. */
export async function caught(p: Promise<unknown> | (() => unknown)): Promise<any> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}
