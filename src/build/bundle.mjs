// Build step 1: bundle the TypeScript sources into one CommonJS file for Node's
// single-executable-application (SEA) builder. Run with the pinned Node 24.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const [entry, outfile] = process.argv.slice(2);
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node24',
  minify: false,
  legalComments: 'none',
  define: { __REIMAGE_VERSION__: JSON.stringify(version) },
  logLevel: 'warning',
});
