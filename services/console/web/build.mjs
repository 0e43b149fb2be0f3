// Builds the console page into dist/: bundles the JS modules with uPlot (no CDN at run time) and
// copies the HTML and styles. The console serves dist/ as it is.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'src');
const dist = join(here, 'dist');

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
await build({
  entryPoints: [join(src, 'app.js')],
  bundle: true,
  format: 'esm',
  target: 'es2020',
  minify: true,
  sourcemap: true,
  outdir: dist,
  logLevel: 'warning',
});
for (const file of ['index.html', 'style.css']) {
  copyFileSync(join(src, file), join(dist, file));
}
console.log(`console page built into ${dist}`);
