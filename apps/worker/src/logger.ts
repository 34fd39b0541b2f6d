import pino, { type Logger } from "pino";

export function createLogger(level: string, pretty: boolean, name: string): Logger {
  return pino({
    name,
    level,
    ...(pretty ? { transport: { target: "pino-pretty", options: { colorize: true, ignore: "pid,hostname" } } } : {}),
  });
}
