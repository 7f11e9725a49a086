import { dropDatabase } from '../../src/db/migrate';

export default async function globalTeardown(): Promise<void> {
  const url = process.env.TEST_DATABASE_URL;
  if (url && process.env.KEEP_TEST_DATABASE !== '1') await dropDatabase(url);
}
