#include <stdio.h>
int main(void)
{
	puts("mailkeep");
	return 0;
}
