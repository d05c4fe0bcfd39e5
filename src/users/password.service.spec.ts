import { readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { HttpStatus } from '@nestjs/common';
import type { ConfigService } from '@nestjs/config';
import { AppError, ErrorCode } from '../common/errors.js';
import type { AppConfig } from '../config/configuration.js';
import { PasswordService } from './password.service.js';

const started: PasswordService[] = [];

async function service(bcryptCost = 4): Promise<PasswordService> {
  const config = { get: () => ({ bcryptCost }) } as unknown as ConfigService<AppConfig, true>;
  const passwords = new PasswordService(config);
  await passwords.onModuleInit();
  started.push(passwords);
  return passwords;
}

/** Each thread of this process by id, with its nice value (proc(5), /proc/pid/stat field 19). */
function threadNiceValues(): Map<number, number> {
  const values = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // Fields after the parenthesised command name, which may contain spaces: state is field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    values.set(Number(tid), Number(fields[19 - 3]));
  }
  return values;
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

  // Linux only: there the nice value is per thread, and /proc shows each one.
  const onLinux = process.platform === 'linux' ? it : it.skip;
  onLinux('runs bcrypt on threads below the event loop in OS priority', async () => {
    const eventLoop = getPriority(0);
    const passwords = await service();
    await Promise.all(Array.from({ length: 4 }, (_, i) => passwords.hash(`password ${i}`)));
    const nice = threadNiceValues();
    const lowered = [...nice.values()].filter((value) => value === Math.min(eventLoop + 10, 19));
    expect(lowered.length).toBeGreaterThan(0);
    // The event loop's own thread (the process's first, whose id is the pid) keeps its priority.
    expect(nice.get(process.pid)).toBe(eventLoop);
  });

  it('answers false, not an error, for an unknown user', async () => {
    const passwords = await service();
    await expect(passwords.verify('anything at all', undefined)).resolves.toBe(false);
  });

  it('fails work caught by shutdown, and work after it, as a 503 to retry', async () => {
    // A real cost, so the hash is still running (or queued) when the pool closes.
    const passwords = await service(12);
    const shuttingDown = {
      status: HttpStatus.SERVICE_UNAVAILABLE,
      code: ErrorCode.ServiceUnavailable,
      retryAfter: 5,
    };
    const inFlight = passwords.hash('caught by shutdown').then(
      () => 'hashed',
      (error: unknown) => error,
    );
    await passwords.onApplicationShutdown();
    const outcome = await inFlight;
    expect(outcome).toBeInstanceOf(AppError);
    expect(outcome).toMatchObject(shuttingDown);
    await expect(passwords.verify('after shutdown', undefined)).rejects.toMatchObject(shuttingDown);
  });
});
