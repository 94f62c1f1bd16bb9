// vm-test's verdict as JUnit XML (--junit FILE), the format CI systems
// (GitLab, Jenkins, GitHub test reporters) show as a test result: one suite,
// one test case per bundle, a <failure> with the reason when it failed, the
// serial console's reimage lines as its output.
import type { VmVerdict } from './run.ts';

const esc = (s: string) =>
  s
    // XML 1.0 cannot carry most control characters, even escaped.
    .replace(/[^\t\n\r\x20-\uD7FF\uE000-\uFFFD]/gu, '?')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');

// junitXml: VERDICT for the bundle NAME that took SECONDS, as a JUnit XML document.
export function junitXml(name: string, v: Pick<VmVerdict, 'pass' | 'reason' | 'serialTail'>, seconds: number): string {
  const t = seconds.toFixed(1);
  const failure = v.pass ? '' : `\n      <failure message="${esc(v.reason)}" type="vm-test">${esc(v.reason)}</failure>`;
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<testsuites tests="1" failures="${v.pass ? 0 : 1}" time="${t}">\n` +
    `  <testsuite name="reimage vm-test" tests="1" failures="${v.pass ? 0 : 1}" errors="0" skipped="0" time="${t}">\n` +
    `    <testcase classname="reimage.vm-test" name="${esc(name)}" time="${t}">${failure}\n` +
    `      <system-out>${esc(v.serialTail.join('\n'))}</system-out>\n` +
    '    </testcase>\n  </testsuite>\n</testsuites>\n'
  );
}
