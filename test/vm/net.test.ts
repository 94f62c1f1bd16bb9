// The network in the initramfs, network-booted: a machine whose disk boots
// nothing (the old disk has no boot loader) starts by PXE: QEMU's iPXE ROM
// gets boot.ipxe over TFTP, which loads the kernel and the reimage initrd
// (dracut's network module in it) over HTTP from nginx on the host (10.0.2.2
// from the guest is the host's loopback); the kernel command line names the
// bundle URL and the target; the bundle comes from the same nginx, the disk is
// reimaged, and the report is POSTed to a test endpoint on the host. A second
// update, packed with a delta made against the index the first one kept,
// comes through that delta. A third boot, with the bundle's server and the
// endpoint unreachable, keeps its refusal's report on the kept partition the
// policy names.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import { startEndpoint } from '../helpers/endpoint.ts';
import * as assert from 'uvu/assert';
import { armedArgs, bootVm, bundleTree, inspectDisk, oldDiskCopy, vmConfig } from '../helpers/vm.ts';
import { startNginx } from '../helpers/web.ts';

const t = suite('vm: bundle by URL');

t(
	'PXE (iPXE over TFTP + HTTP), rd.reimage.bundle=http://10.0.2.2:PORT/bundle/ of a chunked bundle: assembled into RAM from the target disk, only missing chunks downloaded, the disk reimaged, the index kept, the report POSTed; the next update comes through a delta against that index',
	async () => {
		const web = await startNginx(bundleTree(undefined, 'zstd', true, true));
		const endpoint = await startEndpoint<{
			outcome: string;
			assembly?: { chunks: number; seeds: { name: string; chunks: number }[]; fetched: { chunks: number } };
		}>();
		const got = endpoint.got;
		try {
			const configDir = vmConfig({ reportUrl: endpoint.url('/report', '10.0.2.2') });
			const disk = oldDiskCopy();
			const append = await armedArgs('auto', `http://10.0.2.2:${web.port}/bundle/`, 'serial:KIOSK42', configDir);
			assert.match(append, /rd\.neednet=1 ip=dhcp/);
			const vm = await bootVm(append, [{ file: disk, serial: 'KIOSK42' }], { configDir, dracutAdd: ['network'], net: true, pxe: web });
			// No -kernel/-initrd: the kernel came from iPXE, with the arguments of boot.ipxe.
			assert.ok(fs.existsSync(path.join(web.root, 'pxe/initrd.img')));
			assert.match(vm.serial, /Command line: console=ttyS0 panic=-1 .*rd\.reimage\.bundle=http:\/\/10\.0\.2\.2/);
			assert.match(vm.serial, /copy the bundle from http:\/\/10\.0\.2\.2:\d+\/bundle\/ into RAM/);
			assert.match(vm.serial, /assemble the image from \/dev\/\w+ and chunk store http:\/\/10\.0\.2\.2:\d+\/bundle\/chunks\//);
			assert.match(vm.serial, /assembled .* raw sha256 ok/);
			assert.match(vm.serial, /reimage: done; rebooting into the new system/, vm.serial.slice(-3000));
			inspectDisk(disk, (root) => {
				assert.is(JSON.parse(fs.readFileSync(path.join(root, 'var/log/reimage/report.json'), 'utf8')).outcome, 'success');
				assert.ok(fs.statSync(path.join(root, 'var/lib/reimage/last.caibx')).size > 0, 'the index is kept for the next update');
			});
			assert.is(got[0]?.outcome, 'success', 'the report reached the endpoint');
			const a = got[0]?.assembly;
			assert.ok(
				a && (a.seeds[0]?.chunks ?? 0) > 0 && a.fetched.chunks < a.chunks,
				`the old disk seeded the image: ${JSON.stringify(a?.seeds)}`,
			);

			// The next update (the same image packed again with a delta made against the index this run kept):
			// the initramfs reads the kept index from the disk and brings the delta instead of the index.
			const next = bundleTree(undefined, 'zstd', true, true, [path.join(web.root, 'bundle')]);
			fs.cpSync(path.join(next, 'bundle'), path.join(web.root, 'next'), { recursive: true });
			const again = await armedArgs('auto', `http://10.0.2.2:${web.port}/next/`, 'serial:KIOSK42', configDir);
			const vm2 = await bootVm(again, [{ file: disk, serial: 'KIOSK42' }], { configDir, dracutAdd: ['network'], net: true });
			assert.match(vm2.serial, /seed: the index kept by the last run \(\/var\/lib\/reimage\/last\.caibx/);
			assert.match(vm2.serial, /delta delta-[0-9a-f]{16}\.rdelta against the index of \/dev\/\w+/);
			assert.match(vm2.serial, /reimage: done; rebooting into the new system/, vm2.serial.slice(-3000));
			const d = got[1] as { outcome: string; assembly?: { delta?: { file: string } } } | undefined;
			assert.is(d?.outcome, 'success');
			assert.match(d?.assembly?.delta?.file ?? '', /^delta-[0-9a-f]{16}\.rdelta$/);

			// A refusal before the bundle is in, its server and the endpoint both unreachable: the policy keeps the data
			// partition, so the report waits there (reimage-outbox/) for the next run.
			const gone = await startEndpoint();
			await gone.stop();
			const keptConfig = vmConfig({ reportUrl: `http://10.0.2.2:${gone.port}/report`, keep: ['PARTLABEL=data'], retries: 1 });
			const third = await armedArgs('auto', `http://10.0.2.2:${gone.port}/gone/`, 'serial:KIOSK42', keptConfig);
			const vm3 = await bootVm(third, [{ file: disk, serial: 'KIOSK42' }], { configDir: keptConfig, dracutAdd: ['network'], net: true });
			assert.match(
				vm3.serial,
				/kept on the bundle's medium as PARTUUID=[0-9a-f-]+ \("data"\):\/reimage-outbox\/\S+\.json/,
				vm3.serial.slice(-3000),
			);
			assert.match(vm3.serial, /reimage: failed before writing \(exit 9\)/);
			inspectDisk(disk, (_root, data) => {
				const box = path.join(data, 'reimage-outbox');
				const kept = fs.readdirSync(box).filter((f) => f.endsWith('.json'));
				assert.is(kept.length, 1);
				const doc = JSON.parse(fs.readFileSync(path.join(box, kept[0]!), 'utf8')) as { outcome: string; exitCode: number };
				assert.equal([doc.outcome, doc.exitCode], ['refused', 9]);
			});
		} finally {
			await endpoint.stop();
			await web.stop();
		}
	},
);

t.run();
