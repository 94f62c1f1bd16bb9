// The report in the shape of Eclipse hawkBit's DDI action feedback, so an
// existing hawkBit server takes it directly: POST it to
// …/{tenant}/controller/v1/{controllerId}/deploymentBase/{actionId}/feedback
// (with --auth-file holding "targettoken TOKEN" or "gatewaytoken TOKEN").
// reimage reports outcomes only, so the action is closed; a plan leaves it
// open ("proceeding", finished "none").
//
//   reimage report                 DDI feedback
//   outcome success                status.execution closed, result.finished success
//   outcome refused | failed       status.execution closed, result.finished failure
//   outcome planned                status.execution proceeding, result.finished none
//   stages (done), on success      status.result.progress {cnt, of}
//   exitCode                       status.code
//   finished                       timestamp (ms)
//   error.message, phase, written, device, write   status.details (one line each)

export const REPORT_FORMATS = ['reimage', 'hawkbit'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

type Doc = {
  outcome?: string;
  exitCode?: number;
  phase?: string;
  written?: boolean;
  finished?: string;
  stages?: unknown[];
  error?: { message?: string };
  device?: { node?: string; serial?: string; model?: string };
  write?: { bytes?: number; seconds?: number };
};

// hawkbitFeedback: the report DOC as a DDI deploymentBase feedback body.
export function hawkbitFeedback(doc: unknown): Record<string, unknown> {
  const d = (typeof doc === 'object' && doc !== null ? doc : {}) as Doc;
  const planned = d.outcome === 'planned';
  const finished = planned ? 'none' : d.outcome === 'success' ? 'success' : 'failure';
  const done = Array.isArray(d.stages) ? d.stages.length : 0;
  const details = [
    `reimage ${d.outcome ?? 'unknown'}: exit ${d.exitCode ?? '?'}, phase ${d.phase ?? '?'}, disk ${d.written ? 'written' : 'not written'}`,
    ...(d.error?.message ? [d.error.message] : []),
    ...(d.device?.node ? [`device ${d.device.node} (${d.device.model || 'no model'}, serial ${d.device.serial || 'none'})`] : []),
    ...(d.write?.bytes !== undefined ? [`wrote ${d.write.bytes} bytes in ${d.write.seconds ?? '?'} s`] : []),
  ];
  const at = d.finished ? Date.parse(d.finished) : Number.NaN;
  return {
    ...(Number.isFinite(at) ? { timestamp: at } : {}),
    status: {
      execution: planned ? 'proceeding' : 'closed',
      result: { finished, ...(finished === 'success' ? { progress: { cnt: done, of: done } } : {}) },
      code: d.exitCode ?? 0,
      details,
    },
  };
}

// shapeReport: the body sent for FORMAT.
export const shapeReport = (format: ReportFormat | undefined, doc: unknown): unknown => (format === 'hawkbit' ? hawkbitFeedback(doc) : doc);
