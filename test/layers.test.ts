/**
 * docs/architecture.md's table of which folder of src/ imports which is what the code does: a new
 * import across folders updates the table (and the picture above it) or fails here.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('..', import.meta.url).pathname;
const SRC = join(ROOT, 'src');

/** folder → the folders (or folder/module) it imports from, as the code has it. */
function imports(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const folder of readdirSync(SRC).filter((d) => statSync(join(SRC, d)).isDirectory())) {
    const used = new Set<string>();
    for (const file of readdirSync(join(SRC, folder)).filter((f) => f.endsWith('.ts'))) {
      const text = readFileSync(join(SRC, folder, file), 'utf8');
      for (const m of text.matchAll(/(?:from|import\()\s*'\.\.\/([a-z]+)\/([\w-]+)\.js'/g)) used.add(`${m[1]}/${m[2]}`);
    }
    graph.set(folder, used);
  }
  return graph;
}

/** folder → what the table allows: whole folders (`kms/`) or single modules (`mac/views.ts`). */
function table(): Map<string, string[]> {
  const doc = readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8');
  const rows = [...doc.matchAll(/^\| `([a-z]+)\/` \| (.*) \|$/gm)];
  return new Map(
    rows.map(([, folder, cell]) => [folder!, [...cell!.matchAll(/`([a-z]+\/(?:[\w-]+\.ts)?)`/g)].map((m) => m[1]!)]),
  );
}

describe('the layers in docs/architecture.md', () => {
  it('list every folder of src/', () => {
    expect([...table().keys()].sort()).toEqual([...imports().keys()].sort());
  });

  it('allow every import across folders that the code makes, and no more', () => {
    const allowed = table();
    for (const [folder, used] of imports()) {
      const rules = allowed.get(folder) ?? [];
      for (const target of used) {
        const [dir, module] = target.split('/');
        const ok = rules.includes(`${dir}/`) || rules.includes(`${dir}/${module}.ts`);
        expect(ok, `src/${folder}/ imports ../${target}.js, which docs/architecture.md does not list`).toBe(true);
      }
      for (const rule of rules) {
        const ok = [...used].some((t) => (rule.endsWith('/') ? t.startsWith(rule) : `${t}.ts` === rule));
        expect(ok, `docs/architecture.md lists ${rule} for src/${folder}/, which imports nothing from it`).toBe(true);
      }
    }
  });
});
