// Runs the service inside a NestJS application context, as your application would:
//
//   HOOKRELAY_URL=http://127.0.0.1:8080 HOOKRELAY_API_KEY=hr_... npm run build && npm start
//
// Each step prints one JSON line.
import "reflect-metadata";
import { LoggerService, Module } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { HookrelayError, HookrelayService } from "./hookrelay.service";
import { HookrelayModule } from "./hookrelay.module";
import { MessagesService } from "./messages.service";

@Module({ imports: [HookrelayModule], providers: [MessagesService] })
class AppModule {}

// Nest's warnings (HookrelayService logs each retry) as JSON lines too; the rest is quiet.
const logger: LoggerService = {
  log: () => {},
  error: (message: unknown) => console.error(message),
  warn: (message: unknown) => console.log(JSON.stringify({ step: "warn", message })),
};

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(AppModule, { logger });
  const messages = app.get(MessagesService);
  const hookrelay = app.get(HookrelayService);

  // One event, keyed by the id it already has in your system.
  const message = {
    wamid: "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFjNFQjBDMUQ3RjA4QTY5QjM1RkE0AA==",
    conversationId: "conv_8f3a2c",
    from: "+5511987654321",
    text: "Oi!",
  };
  const first = await messages.onInboundMessage(message);
  console.log(JSON.stringify({ step: "send", ...first }));

  // Sent again (a retry after a timeout, a redelivered queue message): the same event.
  const again = await messages.onInboundMessage(message);
  console.log(JSON.stringify({ step: "send again", ...again }));

  // Several at once: one request, one answer per event, in order.
  const batch = await hookrelay.sendBatch([
    { type: "contact.created", data: { id: "cnt_51b9e0", phone: "+5511987654321" } },
    { type: "conversation.created", data: { id: "conv_8f3a2c", status: "open" } },
  ]);
  console.log(JSON.stringify({ step: "batch", data: batch }));

  // A backlog, sent one after the other as fast as hookrelay takes them: over the API key's
  // rate limit, answered 429 and retried after Retry-After, each still accepted once.
  const backlog = [];
  for (const n of [2, 3, 4]) {
    backlog.push(
      await messages.onInboundMessage({ ...message, wamid: `wamid.backlog.${n}`, text: `#${n}` }),
    );
  }
  console.log(JSON.stringify({ step: "backlog", data: backlog }));

  // A mistake is not retried: the problem names the field.
  try {
    await hookrelay.send({ type: "message.nope", data: {} });
  } catch (error) {
    if (!(error instanceof HookrelayError)) throw error;
    console.log(JSON.stringify({ step: "error", ...error.problem }));
  }
  await app.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
