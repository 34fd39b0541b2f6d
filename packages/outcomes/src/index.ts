export {
  OutcomeSystem,
  type OutcomeResources,
  type OutcomeHooks,
  type EndedWork,
  type OutcomeLogger,
  type SweptPage,
} from "./outcome-system.ts";
export { ResultWriter, type Written } from "./result-writer.ts";
export {
  recordJobEvents,
  recordBatchCompleted,
  recordBatchCompletedEvent,
  webhookEventId,
  wantsEvent,
  JOB_EVENT_TYPES,
  type CompletedBatch,
} from "./outcome-events.ts";
