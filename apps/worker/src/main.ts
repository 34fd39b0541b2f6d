import { runProcess } from "@inferline/runtime/process-entry";

await runProcess("worker", () => import("./worker-main.ts"));
