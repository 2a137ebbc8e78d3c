import { Module } from "@nestjs/common";
import { HOOKRELAY_OPTIONS, HookrelayService } from "./hookrelay.service";

@Module({
  providers: [
    HookrelayService,
    {
      provide: HOOKRELAY_OPTIONS,
      useFactory: () => ({
        baseUrl: process.env.HOOKRELAY_URL ?? "http://127.0.0.1:8080",
        apiKey: process.env.HOOKRELAY_API_KEY ?? "",
      }),
    },
  ],
  exports: [HookrelayService],
})
export class HookrelayModule {}
