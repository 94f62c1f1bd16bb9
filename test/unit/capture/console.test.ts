import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { consoleWords } from '../../../src/capture/console.ts';

const cfg = `set timeout=0
menuentry 'Debian' {
	linux /boot/vmlinuz-6.1 root=LABEL=root ro console=tty0 console=ttyS0,115200n8 quiet
	initrd /boot/initrd.img-6.1
}
menuentry 'Other' {
	linux /boot/vmlinuz-old root=LABEL=root console=ttyS1
}
`;

test('the console of the captured system: its first linux line, in order, not the other entries', () => {
	assert.equal(consoleWords(cfg, undefined), ['console=tty0', 'console=ttyS0,115200n8']);
});

test('/etc/default/grub (quoted or not) and /etc/kernel/cmdline add theirs, each word once', () => {
	const dflt = 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT="quiet earlycon=uart8250,io,0x3f8"\nGRUB_CMDLINE_LINUX=console=ttyS0,115200n8\n';
	assert.equal(consoleWords(cfg, dflt), ['console=tty0', 'console=ttyS0,115200n8', 'earlycon=uart8250,io,0x3f8']);
	assert.equal(consoleWords(undefined, undefined, 'root=UUID=x console=ttyAMA0 rw\n'), ['console=ttyAMA0']);
});

test('a system that names no console gives none (never the capturing host)', () => {
	assert.equal(consoleWords('menuentry x {\n\tlinux /vmlinuz root=/dev/sda1 quiet\n}\n', 'GRUB_CMDLINE_LINUX=""\n'), []);
	assert.equal(consoleWords(undefined, undefined), []);
});

test.run();
