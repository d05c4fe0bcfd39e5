import type { ConfigService } from '@nestjs/config';
import type { AppConfig } from '../config/configuration.js';
import { PasswordService } from './password.service.js';

const started: PasswordService[] = [];

async function service(): Promise<PasswordService> {
  const config = { get: () => ({ bcryptCost: 4 }) } as unknown as ConfigService<AppConfig, true>;
  const passwords = new PasswordService(config);
  await passwords.onModuleInit();
  started.push(passwords);
  return passwords;
}

afterAll(async () => {
  await Promise.all(started.map((passwords) => passwords.onApplicationShutdown()));
});

describe('PasswordService', () => {
  it('verifies the password it hashed, and nothing else', async () => {
    const passwords = await service();
    const hash = await passwords.hash('correct horse battery');
    await expect(passwords.verify('correct horse battery', hash)).resolves.toBe(true);
    await expect(passwords.verify('correct horse batterY', hash)).resolves.toBe(false);
  });

  it('treats composed and decomposed Unicode as one password (NFC)', async () => {
    const passwords = await service();
    const composed = 'caf\u00e9 cr\u00e8me br\u00fbl\u00e9e';
    const decomposed = composed.normalize('NFD');
    expect(decomposed).not.toBe(composed);
    const hash = await passwords.hash(decomposed);
    await expect(passwords.verify(composed, hash)).resolves.toBe(true);
  });

  it('never accepts input longer than 72 bytes, even when its first 72 bytes match', async () => {
    const passwords = await service();
    const exactly72 = 'é'.repeat(36); // 2 bytes each in UTF-8
    expect(Buffer.byteLength(exactly72)).toBe(72);
    const hash = await passwords.hash(exactly72);
    await expect(passwords.verify(exactly72, hash)).resolves.toBe(true);
    // bcrypt alone would say yes: it reads only the first 72 bytes.
    await expect(passwords.verify(`${exactly72}tail`, hash)).resolves.toBe(false);
  });

  it('hashes on worker threads, several at once, each result its own', async () => {
    const passwords = await service();
    const inputs = Array.from({ length: 6 }, (_, i) => `password number ${i}`);
    const hashes = await Promise.all(inputs.map((input) => passwords.hash(input)));
    const checks = await Promise.all(inputs.map((input, i) => passwords.verify(input, hashes[i])));
    expect(checks).toEqual(inputs.map(() => true));
    await expect(passwords.verify(inputs[0], hashes[1])).resolves.toBe(false);
  });

  it('answers false, not an error, for an unknown user', async () => {
    const passwords = await service();
    await expect(passwords.verify('anything at all', undefined)).resolves.toBe(false);
  });
});
