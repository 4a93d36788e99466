/** Log and record-stream integrity: sidecar signing/verification and Transform streams. */
export { createSignStream, createVerifyStream } from './transforms.js';
export type { RecordStreamOptions, VerifyStreamOptions, SignedRecord, VerifiedRecord } from './transforms.js';
export { signLog, LogInputError } from './sign.js';
export type { SignLogOptions, SignSummary, Progress } from './sign.js';
export { verifyLog, describe as describeIssue, ISSUE_KINDS } from './verify.js';
export type { VerifyLogOptions, VerifyReport, VerifyIssue, IssueKind } from './verify.js';
export { engineFromMacKey } from './engine.js';
export type { MacEngine, PackedMacKey } from './engine.js';
export { engineFromClient } from './kms-engine.js';
export type { KeyOptions } from './kms-engine.js';
export type { LogInput, FilePath } from './input.js';
export { SIDECAR_VERSION, RAW_RECORD_MAX, recordMacInput, parseDelimiter } from './format.js';
export type { Framing, SidecarHeader } from './format.js';
