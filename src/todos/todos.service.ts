import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { NotFoundError } from '../common/errors.js';
import type { CreateTodoDto, ListTodosQueryDto, UpdateTodoDto } from './dto/todo.dto.js';
import { Todo } from './todo.entity.js';

/** Every query here is scoped by the owner's id: another user's todo is simply not found. */
@Injectable()
export class TodosService {
  constructor(@InjectRepository(Todo) private readonly todos: Repository<Todo>) {}

  async list(userId: string, query: ListTodosQueryDto): Promise<{ items: Todo[]; total: number }> {
    const where =
      query.completed === undefined ? { userId } : { userId, completed: query.completed };
    const [items, total] = await this.todos.findAndCount({
      where,
      order: { createdAt: 'DESC', id: 'DESC' },
      take: query.limit,
      skip: query.offset,
    });
    return { items, total };
  }

  async create(userId: string, input: CreateTodoDto): Promise<Todo> {
    const todo = this.todos.create({
      id: randomUUID(),
      userId,
      title: input.title,
      description: input.description ?? null,
      completed: input.completed ?? false,
    });
    return this.todos.save(todo);
  }

  async get(userId: string, id: string): Promise<Todo> {
    const todo = await this.todos.findOne({ where: { id, userId } });
    if (!todo) throw new NotFoundError('Todo not found');
    return todo;
  }

  async update(userId: string, id: string, input: UpdateTodoDto): Promise<Todo> {
    const changes: Partial<Pick<Todo, 'title' | 'description' | 'completed'>> = {};
    if (input.title !== undefined) changes.title = input.title;
    if (input.description !== undefined) changes.description = input.description;
    if (input.completed !== undefined) changes.completed = input.completed;
    if (Object.keys(changes).length > 0) {
      // One conditional UPDATE scoped by owner: no read-modify-write window.
      const result = await this.todos
        .createQueryBuilder()
        .update(Todo)
        .set(changes)
        .where('id = :id AND user_id = :userId', { id, userId })
        .execute();
      if (result.affected === 0) throw new NotFoundError('Todo not found');
    }
    return this.get(userId, id);
  }

  async remove(userId: string, id: string): Promise<void> {
    const result = await this.todos.delete({ id, userId });
    if (result.affected === 0) throw new NotFoundError('Todo not found');
  }
}
