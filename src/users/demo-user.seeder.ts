import { randomUUID } from 'node:crypto';
import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { AppConfig } from '../config/configuration.js';
import { runSql } from '../database/sql.js';
import { PasswordService } from './password.service.js';
import { usernameKey } from '../common/username.js';

export const DEMO_USERNAME = 'testuser';
export const DEMO_PASSWORD = 'testpass123';

/**
 * Creates the demo account, so a fresh local instance can be tried without
 * registering. Only on the embedded development default, or when
 * SEED_DEMO_USER=true outside production; never otherwise.
 */
@Injectable()
export class DemoUserSeeder implements OnApplicationBootstrap {
  private readonly logger = new Logger(DemoUserSeeder.name);

  constructor(
    private readonly config: ConfigService<AppConfig, true>,
    private readonly passwords: PasswordService,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (!this.config.get('seedDemoUser', { infer: true })) return;
    const hash = await this.passwords.hash(DEMO_PASSWORD);
    const inserted = await runSql(
      this.dataSource.manager,
      `INSERT INTO users (id, username, username_key, password_hash)
       VALUES ($1, $2, $3, $4) ON CONFLICT (username_key) DO NOTHING`,
      [randomUUID(), DEMO_USERNAME, usernameKey(DEMO_USERNAME), hash],
    );
    if (inserted.rowCount > 0) {
      this.logger.warn(
        `Demo user "${DEMO_USERNAME}" / "${DEMO_PASSWORD}" created (development only)`,
      );
    }
  }
}
