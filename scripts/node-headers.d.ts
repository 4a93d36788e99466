/** The directory holding `include/node` for node-gyp's --nodedir, if one is known. */
export function nodeHeadersDir(): string | undefined;
