-- AlterTable
ALTER TABLE "users" ADD COLUMN     "payment_event_at" TIMESTAMPTZ(3),
ADD COLUMN     "payment_status" VARCHAR(50);

-- CreateIndex
CREATE INDEX "stripe_events_outcome_received_at_idx" ON "stripe_events"("outcome", "received_at");

-- CreateTable
CREATE TABLE "outbox" (
    "id" BIGSERIAL NOT NULL,
    "tenant_id" UUID NOT NULL,
    "source_id" VARCHAR(255) NOT NULL,
    "payload" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "claimed_until" TIMESTAMPTZ(3),
    "delivered_at" TIMESTAMPTZ(3),
    "result" TEXT,
    "last_error" TEXT,
    "failed_at" TIMESTAMPTZ(3),

    CONSTRAINT "outbox_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "outbox_tenant_id_id_idx" ON "outbox"("tenant_id", "id");

-- CreateIndex
CREATE INDEX "outbox_delivered_at_next_attempt_at_idx" ON "outbox"("delivered_at", "next_attempt_at");
