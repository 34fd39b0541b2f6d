-- A tenant's previous webhook signing secrets, each with the time it stops signing: a second
-- rotation inside the overlap window keeps every earlier secret signing for its own full window,
-- where the single previous-secret column let the next rotation replace it at once. A JSON array
-- of {"secret", "expiresAt"}, newest first; a rotation drops those expired. A previous secret
-- still signing moves into it.
ALTER TABLE "tenants" ADD COLUMN "previousWebhookSecrets" JSONB NOT NULL DEFAULT '[]';
UPDATE "tenants"
SET "previousWebhookSecrets" = jsonb_build_array(jsonb_build_object('secret', "previousWebhookSecret", 'expiresAt', "previousSecretExpiresAt"))
WHERE "previousWebhookSecret" IS NOT NULL AND "previousSecretExpiresAt" > now();
ALTER TABLE "tenants" DROP COLUMN "previousWebhookSecret", DROP COLUMN "previousSecretExpiresAt";
