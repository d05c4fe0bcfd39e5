import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpStatus,
  Param,
  ParseUUIDPipe,
  Patch,
  Post,
  Query,
  Res,
} from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiResponseOptions,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Authenticated } from '../common/authenticated.decorator.js';
import { CurrentPrincipal, type Principal } from '../common/principal.js';
import { ValidationError } from '../common/errors.js';
import { ErrorResponseDto } from '../common/error-response.dto.js';
import {
  CreateTodoDto,
  ListTodosQueryDto,
  TodoResponseDto,
  UpdateTodoDto,
} from './dto/todo.dto.js';
import { TodosService } from './todos.service.js';

const notFound: ApiResponseOptions = {
  type: ErrorResponseDto,
  description: 'No such todo for this user (`not_found`)',
};

/** Ids are checked before they reach the database: a malformed one is a 400, never a 500. */
const TodoId = () =>
  Param(
    'id',
    new ParseUUIDPipe({
      exceptionFactory: () =>
        new ValidationError('id must be a UUID', [
          { field: 'id', messages: ['id must be a UUID'] },
        ]),
    }),
  );

@ApiTags('todos')
@Authenticated()
@ApiBadRequestResponse({
  type: ErrorResponseDto,
  description: 'Invalid input (`validation_failed`)',
})
@Controller('todos')
export class TodosController {
  constructor(private readonly todos: TodosService) {}

  @Get()
  @ApiOperation({ summary: "The caller's todos, newest first; the total is in X-Total-Count" })
  @ApiOkResponse({
    type: [TodoResponseDto],
    headers: {
      'X-Total-Count': { description: 'Total matching todos', schema: { type: 'integer' } },
    },
  })
  async list(
    @CurrentPrincipal() principal: Principal,
    @Query() query: ListTodosQueryDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TodoResponseDto[]> {
    const { items, total } = await this.todos.list(principal.userId, query);
    void reply.header('X-Total-Count', String(total));
    return items.map((todo) => TodoResponseDto.from(todo));
  }

  @Post()
  @ApiOperation({ summary: 'Create a todo' })
  @ApiCreatedResponse({ type: TodoResponseDto })
  async create(
    @CurrentPrincipal() principal: Principal,
    @Body() body: CreateTodoDto,
  ): Promise<TodoResponseDto> {
    return TodoResponseDto.from(await this.todos.create(principal.userId, body));
  }

  @Get(':id')
  @ApiOperation({ summary: 'One todo' })
  @ApiOkResponse({ type: TodoResponseDto })
  @ApiNotFoundResponse(notFound)
  async get(
    @CurrentPrincipal() principal: Principal,
    @TodoId() id: string,
  ): Promise<TodoResponseDto> {
    return TodoResponseDto.from(await this.todos.get(principal.userId, id));
  }

  @Patch(':id')
  @ApiOperation({ summary: 'Change any of title, description, completed' })
  @ApiOkResponse({ type: TodoResponseDto })
  @ApiNotFoundResponse(notFound)
  async update(
    @CurrentPrincipal() principal: Principal,
    @TodoId() id: string,
    @Body() body: UpdateTodoDto,
  ): Promise<TodoResponseDto> {
    return TodoResponseDto.from(await this.todos.update(principal.userId, id, body));
  }

  @Delete(':id')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: 'Delete a todo' })
  @ApiNoContentResponse()
  @ApiNotFoundResponse(notFound)
  async remove(@CurrentPrincipal() principal: Principal, @TodoId() id: string): Promise<void> {
    await this.todos.remove(principal.userId, id);
  }
}
