import { Injectable } from "@nestjs/common";
import { Accepted, HookrelayService } from "./hookrelay.service";

/** An inbound WhatsApp message, as your service already has it. */
export interface InboundMessage {
  wamid: string;
  conversationId: string;
  from: string;
  text: string;
}

@Injectable()
export class MessagesService {
  constructor(private readonly hookrelay: HookrelayService) {}

  /** After the message is committed to your database: tell the tenant's webhooks. */
  async onInboundMessage(message: InboundMessage): Promise<Accepted> {
    return this.hookrelay.send({
      type: "message.new",
      // The id the message already has: a retry, or a second call, creates nothing new.
      idempotency_key: message.wamid,
      data: {
        message_id: message.wamid,
        conversation_id: message.conversationId,
        from: message.from,
        text: message.text,
      },
    });
  }
}
