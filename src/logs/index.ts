/** Log and record-stream integrity: sidecar signing/verification, live logs, and Transform streams. */
export { createSignStream, createVerifyStream } from './transforms.js';
export type {
  RecordStreamOptions,
  SignStreamOptions,
  VerifyStreamOptions,
  SignedRecord,
  VerifiedRecord,
} from './transforms.js';
export { signLog, LogInputError } from './sign.js';
export type { SignLogOptions, SignSummary, Progress } from './sign.js';
export { verifyLog, describe as describeIssue, ISSUE_KINDS, isTampering } from './verify.js';
export type { VerifyLogOptions, VerifyReport, VerifyIssue, IssueKind } from './verify.js';
export type { ForwardSecureOptions } from './sign.js';
export { followLog, FollowError } from './follow.js';
export type { FollowOptions, FollowEvent, FollowSummary } from './follow.js';
export { createSignedLog, SignedLog } from './signed-log.js';
export type { SignedLogOptions } from './signed-log.js';
export { anchorBytes, anchorLine, anchorVerifies, parseAnchor } from './anchors.js';
export type { Anchor, StreamAnchor, CheckpointAnchor, CloseAnchor, LogIdentity } from './anchors.js';
export { checkpointSink } from './sink.js';
export type { CheckpointSink } from './sink.js';
export { DEFAULT_EPOCH_MS } from './keys.js';
export type { CheckpointOptions } from './checkpoint.js';
export type { SidecarCheckpointOptions } from './sidecar-writer.js';
export { engineFromMacKey } from './engine.js';
export type { MacEngine, PackedMacKey } from './engine.js';
export { engineFromClient, engineFromKms } from './kms-engine.js';
export type { KeyOptions } from './kms-engine.js';
export type { LogInput, FilePath } from './input.js';
export { SIDECAR_VERSION, RAW_RECORD_MAX, recordMacInput, parseDelimiter } from './format.js';
export type { Framing, SidecarHeader, ChainLink } from './format.js';
