// Where node-gyp finds this Node's headers without downloading them: npm
// passes its `nodedir` setting to scripts; run outside npm, use the headers
// installed beside the running node (e.g. /usr/include/node for /usr/bin/node).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export function nodeHeadersDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = join(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
}
