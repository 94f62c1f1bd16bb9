// Unit tests must not start processes: every spawn entry point throws.
import cp from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';

for (const k of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork']) {
	cp[k] = () => {
		throw new Error(`unit tests may not start processes (child_process.${k})`);
	};
}
syncBuiltinESMExports();
