// Runs HookrelayService inside a NestJS application context, as a service of yours would:
//
//   HOOKRELAY_URL=http://127.0.0.1:8080 HOOKRELAY_API_KEY=hr_... npm start
//
// Each step prints one JSON line.
import "reflect-metadata";
import { Module } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { HOOKRELAY_OPTIONS, HookrelayError, HookrelayService } from "./hookrelay.service";

@Module({
  providers: [
    HookrelayService,
    {
      provide: HOOKRELAY_OPTIONS,
      useValue: {
        baseUrl: process.env.HOOKRELAY_URL ?? "http://127.0.0.1:8080",
        apiKey: process.env.HOOKRELAY_API_KEY ?? "",
      },
    },
  ],
})
class AppModule {}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  const hookrelay = app.get(HookrelayService);

  // One event, keyed by the id it already has in your system.
  const message = {
    type: "message.new",
    idempotency_key: "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFjNFQjBDMUQ3RjA4QTY5QjM1RkE0AA==",
    data: { message_id: "wamid.HBgN...", from: "+5511987654321", text: "Oi!" },
  };
  const first = await hookrelay.send(message);
  console.log(JSON.stringify({ step: "send", ...first }));

  // Sent again (a retry after a timeout, a redelivered queue message): the same event.
  const again = await hookrelay.send(message);
  console.log(JSON.stringify({ step: "send again", ...again }));

  // Several at once: one request, one answer per event, in order.
  const batch = await hookrelay.sendBatch([
    { type: "contact.created", data: { id: "cnt_51b9e0", phone: "+5511987654321" } },
    { type: "conversation.created", data: { id: "conv_8f3a2c", status: "open" } },
  ]);
  console.log(JSON.stringify({ step: "batch", data: batch }));

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
