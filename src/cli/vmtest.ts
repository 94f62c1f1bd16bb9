// vm-test's options for booting the result (--firmware, --marker,
// --boot-timeout, --no-boot) and the target's --sector-size, checked once here: each bad value gets its
// sentence before any VM starts.
import { usageError } from '../errors.ts';
import { FIRMWARES, type Firmware } from '../vmtest/firmware.ts';
import type { VmTestOptions } from '../vmtest/run.ts';
import type { Values } from './args.ts';

type BootOptions = Pick<VmTestOptions, 'boot' | 'firmware' | 'marker' | 'bootTimeoutS' | 'sectorSize'>;

const text = (v: Values, k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);

// vmBootOptions: the result-boot options of vm-test's values V.
export function vmBootOptions(v: Values): BootOptions {
  const firmware = text(v, 'firmware');
  if (firmware !== undefined && !(FIRMWARES as readonly string[]).includes(firmware))
    throw usageError(`--firmware ${firmware} is not a firmware: write --firmware bios (SeaBIOS) or --firmware efi (OVMF)`);
  const marker = text(v, 'marker');
  let re: RegExp | undefined;
  if (marker !== undefined) {
    try {
      re = new RegExp(marker);
    } catch (e) {
      throw usageError(`--marker ${marker} is not a regular expression (${(e as Error).message.replace(/^Invalid regular expression: /, '')}): escape the special characters`);
    }
    if (re.test('')) throw usageError(`--marker ${marker} matches an empty line, so every boot would pass: give a line the booted system prints`);
  }
  const timeout = text(v, 'boot-timeout');
  if (timeout !== undefined && !/^[1-9]\d*$/.test(timeout)) throw usageError(`--boot-timeout ${timeout} is not a whole number of seconds: write e.g. --boot-timeout 300`);
  const noBoot = v['no-boot'] === true;
  const sector = text(v, 'sector-size');
  if (sector !== undefined && sector !== '512' && sector !== '4096') throw usageError(`--sector-size ${sector} is not a disk sector size: write --sector-size 512 or --sector-size 4096 (4Kn)`);
  // SeaBIOS reads disks through 512-byte BIOS calls only.
  if (sector === '4096' && !noBoot && firmware !== 'efi') throw usageError('--sector-size 4096 with BIOS firmware: SeaBIOS cannot boot a 4Kn disk, so add --firmware efi (or --no-boot)');
  const given = ['firmware', 'marker', 'boot-timeout'].filter((k) => v[k] !== undefined);
  if (noBoot && given.length) throw usageError(`--no-boot with --${given[0]}: the result is not booted, so drop one of them`);
  return {
    ...(noBoot ? { boot: false } : {}),
    ...(firmware ? { firmware: firmware as Firmware } : {}),
    ...(re ? { marker: re } : {}),
    ...(timeout ? { bootTimeoutS: Number(timeout) } : {}),
    ...(sector ? { sectorSize: Number(sector) as 512 | 4096 } : {}),
  };
}
