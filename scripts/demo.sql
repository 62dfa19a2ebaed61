-- The demo tables as their owners declare them (dynamo-sql --rc scripts/demo.sql):
-- UserEngagement keeps each event's time in the number eventTime, as seconds
-- since 1970-01-01 UTC, so eventTime is a timestamp and time ranges become
-- key conditions. Inventory needs nothing declared.
CREATE OR REPLACE EXTERNAL TABLE "UserEngagement" STORED AS DYNAMODB LOCATION 'UserEngagement'
OPTIONS ('time_format' 'eventTime: epoch_seconds');
