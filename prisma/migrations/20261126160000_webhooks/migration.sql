-- AlterTable
ALTER TABLE "webhook_events" ALTER COLUMN "payload" SET DATA TYPE JSON;

-- AlterTable
ALTER TABLE "webhook_deliveries" ADD COLUMN     "responseBody" TEXT;

